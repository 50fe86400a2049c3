"""The support tests' shared fixture: a Chinese-first KB of a made-up appliance brand."""

from __future__ import annotations

import json

import pytest

# A Chinese-only KB of a made-up appliance brand, plus one English-only entry.
APPLIANCE = [
    {
        "id": "install-fee",
        "question": "空调安装收费吗？",
        "answer": "青禾空调享受免费标准安装，含3米铜管；加长铜管每米60元。",
    },
    {"id": "warranty", "question": "空调保修几年？", "answer": "空调整机保修6年，压缩机保修10年，凭发票享受。"},
    {"id": "invoice", "question": "怎么开发票？", "answer": "在订单详情页申请电子发票，1个工作日内发送到邮箱。"},
    {"id": "move", "question": "空调移机怎么收费？", "answer": "空调移机挂机200元/台、柜机300元/台，含拆机和装机。"},
    {"id": "refund", "question": "退款多久到账？", "answer": "退款审核通过后1-3个工作日原路退回。"},
    {"id": "filter", "question": "空调滤网多久清洗一次？", "answer": "建议每两周清洗一次滤网，用清水冲洗后阴干。"},
    {
        "id": "voltage-en",
        "question": "Can I use a Qinghe fridge abroad with 110 V power?",
        "answer": "Our fridges are built for 220 V; use a step-up transformer rated 1000 W or more.",
    },
]


@pytest.fixture
def zh_support(tmp_path, fake_registry):
    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.services.support.bot import SupportService

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.jsonl").write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in APPLIANCE), encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", support_kb=kb)
    return SupportService(fake_registry, FeedbackService(settings.data_dir), settings)
