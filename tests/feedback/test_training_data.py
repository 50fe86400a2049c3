"""Training rows from every signal: corrections, operators' answers, Arena votes, thumbs — with lineage."""

from __future__ import annotations

import pytest

from aigc_demo.errors import InvalidInput
from aigc_demo.feedback.training_data import build, sources


def test_a_correction_is_an_sft_row_and_beats_the_answer_it_corrects(services):
    fb = services.feedback
    answer = services.text.generate("写一句咖啡店的广告语", seed=1)
    record = fb.rate(answer["output_id"], "down", "太长", correction="醒来，从一杯好咖啡开始。")
    assert record.correction == "醒来，从一杯好咖啡开始。"
    ratings = fb.read("ratings").records
    sft = build("sft", ratings)
    assert sft == [
        {
            "messages": [
                *sft[0]["messages"][:-1],
                {"role": "assistant", "content": "醒来，从一杯好咖啡开始。"},
            ],
            "source": "correction",
            "record_ids": [record.id],
        }
    ]
    assert sft[0]["messages"][-2] == {"role": "user", "content": "写一句咖啡店的广告语"}
    (pair,) = build("dpo", ratings)
    assert (pair["chosen"], pair["rejected"], pair["source"]) == (
        "醒来，从一杯好咖啡开始。",
        answer["text"],
        "correction",
    )
    assert build("kto", ratings)[0]["label"] is False  # the answer itself stays a 👎 for KTO


def test_a_correction_added_after_the_thumb_amends_that_rating(services):
    fb = services.feedback
    answer = services.text.generate("把这句话翻译成英文：欢迎光临", seed=2)
    first = fb.rate(answer["output_id"], "up")
    fb.rate(answer["output_id"], "up", amends=first.id, correction="Welcome!")
    rows = build("sft", fb.read("ratings").records)
    assert [r["messages"][-1]["content"] for r in rows] == ["Welcome!"]  # the latest rating only, once


def test_a_too_long_correction_is_refused_with_its_length(services):
    answer = services.text.generate("你好", seed=3)
    with pytest.raises(InvalidInput) as info:
        services.feedback.rate(answer["output_id"], "up", correction="好" * 8001)
    assert "8001" in info.value.localized("zh") and "上限" in info.value.localized("zh")


def test_an_operators_resolution_is_an_sft_row_and_beats_the_bots_reply(services):
    support = services.support
    reply = support.chat("我要投诉，你们的客服太差了，我要找人工！")
    assert reply["handoff"]
    ticket = support.handoffs.tickets()[0]
    support.handoffs.resolve(ticket.ticket, "非常抱歉给您带来不便，已为您安排专人回电并补偿一张优惠券。")
    fb = services.feedback
    streams = {name: fb.read(name).records for name in ("handoffs", "handoff_updates", "events")}
    sft = build("sft", [], **streams)
    assert sft[0]["source"] == "operator" and sft[0]["messages"][-1]["content"].startswith("非常抱歉")
    assert sft[0]["messages"][0] == {"role": "user", "content": "我要投诉，你们的客服太差了，我要找人工！"}
    (pair,) = build("dpo", [], **streams)
    assert pair["chosen"].startswith("非常抱歉") and pair["rejected"] == reply["answer"]
    assert len(pair["record_ids"]) == 2 and all(pair["record_ids"])
    assert sources(sft) == {"operator": 1}
    assert build("sft", [], tab="text", **streams) == []  # a text-tab filter leaves support's out


def test_a_ticket_reopened_after_its_resolution_is_not_training_data():
    handoffs = [{"id": "h1", "ticket": "T-1", "output_id": "o1", "messages": [{"role": "user", "content": "人呢？"}]}]
    updates = [
        {"id": "u1", "ticket": "T-1", "status": "resolved", "resolution": "已处理"},
        {"id": "u2", "ticket": "T-1", "status": "open"},
    ]
    assert build("sft", [], handoffs=handoffs, handoff_updates=updates) == []
    assert len(build("sft", [], handoffs=handoffs, handoff_updates=updates[:1])) == 1


def test_the_operators_answer_is_paired_with_the_question_it_answers_not_with_转人工(services):
    support = services.support
    history = [{"role": "user", "content": "运费多少？"}, {"role": "assistant", "content": "运费以结算页为准。"}]
    earlier = support.chat("转人工", history, session_id="s1")["ticket"]
    support.handoffs.reply(earlier, "满 99 元包邮，不满收 8 元。")
    support.resolve_handoff(earlier)
    # The question reaches the operator only in the live thread: the bot never answered it.
    later = support.chat("我要转人工", [], session_id="s2")["ticket"]
    support.chat("订单 8812 的退款三天没到", [], session_id="s2", ticket=later)
    support.handoffs.reply(later, "已为您加急，今天内原路退回。")
    support.resolve_handoff(later)
    fb = services.feedback
    streams = {name: fb.read(name).records for name in ("handoffs", "handoff_updates", "events")}
    sft = build("sft", [], **streams)
    assert [r["messages"][0]["content"] for r in sft] == ["运费多少？", "订单 8812 的退款三天没到"]
    (pair,) = build("dpo", [], **streams)  # operator ≻ bot, on the question the bot did answer
    assert pair["chosen"] == "满 99 元包邮，不满收 8 元。" and pair["rejected"] == "运费以结算页为准。"
