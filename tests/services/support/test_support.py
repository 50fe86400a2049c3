"""Support: KB loading, hybrid retrieval on the real embedded embedder, answers, handoff."""

from __future__ import annotations

import pytest

from aigc_demo.errors import AigcError
from aigc_demo.services.support.bot import SupportService, is_supported, normalize_history
from aigc_demo.services.support.kb import load_kb
from aigc_demo.services.support.retrieval import tokenize


def test_sample_kb_is_bilingual_and_large_enough(settings):
    kb = load_kb(settings.support_kb)
    assert kb.problems == []
    assert len(kb.entries) >= 30
    assert sum(e.id.endswith("-zh") for e in kb.entries) >= 15
    assert len({e.id for e in kb.entries}) == len(kb.entries)


def test_kb_loader_reports_bad_lines_and_keeps_good_ones(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"id": "x1", "question": "Q1?", "answer": "A1."}\n{broken\n{"question": "Q3?"}\n', encoding="utf-8"
    )
    (tmp_path / "b.csv").write_text(
        "question,answer,url\n运费多少？,标准运费 ¥8。,https://e.example/f\n", encoding="utf-8"
    )
    (tmp_path / "c.md").write_text(
        "# Store hours\n\nWe open 9-18.\n\n## Holidays\n\nClosed on Jan 1.\n", encoding="utf-8"
    )
    (tmp_path / "d.csv").write_text("q,a\n1,2\n", encoding="utf-8")
    (tmp_path / "e.txt").write_bytes(b"\xff\xfe bad")
    kb = load_kb(tmp_path)
    assert [e.question for e in kb.entries] == ["Q1?", "运费多少？", "Store hours", "Holidays"]
    assert kb.entries[0].id == "x1" and kb.entries[1].url == "https://e.example/f"
    problems = "\n".join(kb.problems)
    assert "a.jsonl, line 2: invalid JSON" in problems
    assert "a.jsonl, line 3: missing answer" in problems
    assert "d.csv, line 1: the header needs 'question' and 'answer'" in problems
    assert "e.txt: not UTF-8" in problems
    zh = "\n".join(p.in_language("zh") for p in kb.problems)  # what a Chinese page shows
    assert "a.jsonl 第 2 行：JSON 格式错误" in zh and "a.jsonl 第 3 行：缺少 answer" in zh
    assert "d.csv 第 1 行：表头需要 question 和 answer 两列" in zh and "e.txt：不是 UTF-8 文本" in zh
    assert not any(word in zh for word in ("invalid", "missing", "header", "not UTF-8", " and "))
    both = next(p for p in load_kb_rows(tmp_path, '{"id": "y"}') if p.key == "missing")
    assert str(both).endswith("missing question and answer") and both.in_language("zh").endswith(
        "缺少 question 和 answer"
    )


def test_a_plain_text_policy_is_split_at_its_title_lines(tmp_path):
    (tmp_path / "policy.txt").write_text(
        "租住规约（2025版）\n\n第五条 押金与退还\n押金为一个月租金，退房验收后7个工作日内退还。\n\n"
        "第六条 逾期付款\n逾期每日收取0.5%滞纳金。本条适用于：\n1. 月付租客\n\n"
        "Late payment\nA fee of 0.5% a day applies after three days.\n",
        encoding="utf-8",
    )
    kb = load_kb(tmp_path)
    titles = [e.question for e in kb.entries]
    assert titles == ["第五条 押金与退还", "第六条 逾期付款", "Late payment"]
    assert "1. 月付租客" in kb.entries[1].answer  # a numbered list item inside a body stays body


def test_tokenize_handles_chinese_and_english():
    assert tokenize("Returns?") == ["return"]
    assert "退款" in tokenize("退款多久") and "退" in tokenize("退款多久")


@pytest.fixture(scope="module")
def real_support(tmp_path_factory, model_cache):
    """SupportService on the real embedded MiniLM and the sample KB (loaded once)."""
    import os

    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry

    data = tmp_path_factory.mktemp("support-data")
    os.environ["AIGC_DATA_DIR"] = str(data)
    os.environ["AIGC_CACHE_DIR"] = str(model_cache)
    s = Settings(profile="offline")
    svc = SupportService(ModelRegistry(s), FeedbackService(s.data_dir), s)
    svc.index()
    return svc


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How long does standard shipping take?", "shipping-times-en"),
        ("Which payment methods do you accept?", "payment-methods-en"),
        ("do you ship to Japan?", "international-shipping-en"),
        ("退款多久能到账？", "refund-time-zh"),
        ("满多少钱包邮？", "shipping-cost-zh"),
        ("电子产品保修多久？", "warranty-length-zh"),
    ],
)
def test_in_scope_questions_are_answered_from_the_right_entry(real_support, question, expected):
    result = real_support.chat(question)
    assert not result["handoff"]
    assert result["sources"][0]["id"] == expected
    entry = next(e for e in real_support.kb.entries if e.id == expected)
    assert entry.answer in result["answer"] and "[1]" in result["answer"]
    assert {"id", "title", "score", "url", "snippet"} <= set(result["sources"][0])
    # The answer is that entry word for word: the runners-up are not its sources.
    assert result["answer_mode"].startswith("extractive") and len(result["sources"]) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "What's the weather in Paris tomorrow?",
        "Who won the 2022 world cup?",
        "how do I cook pasta",
        "帮我写一首诗",
        "今天天气怎么样",
    ],
)
def test_out_of_scope_questions_get_a_scope_reply_and_no_ticket(real_support, question):
    result = real_support.chat(question)
    assert result["refused"] and result["answer_mode"] == "off-topic" and not result["handoff"]
    assert not result["ticket"] and result["sources"] == []
    assert "human" in result["answer"] or "人工" in result["answer"]  # the way to a person is named


@pytest.mark.slow
@pytest.mark.parametrize("message", ["I want to talk to a human", "转人工", "Can I speak to an agent please?"])
def test_explicit_request_hands_off_and_is_recorded(real_support, message):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
    result = real_support.chat(message, history, session_id="sess")
    assert result["handoff"] and result["handoff_reason"] == "requested"
    records = real_support.feedback.read("handoffs").records
    mine = [r for r in records if r["output_id"] == result["output_id"]]
    assert mine and mine[0]["messages"][0]["content"] == "hi" and mine[0]["session_id"] == "sess"


@pytest.mark.slow
def test_repeated_frustration_hands_off(real_support):
    history = [{"role": "user", "content": "this is useless"}, {"role": "assistant", "content": "Sorry!"}]
    result = real_support.chat("still useless, where is my refund?", history)
    assert result["handoff"] and result["handoff_reason"] == "frustration"


@pytest.mark.slow
def test_follow_up_uses_the_conversation(real_support):
    history = [
        {"role": "user", "content": "How do I get a refund?"},
        {"role": "assistant", "content": "..."},
    ]
    result = real_support.chat("and how long does it take?", history)
    assert not result["handoff"]
    assert result["sources"][0]["id"] in {"refund-time-en", "start-return-en"}


def test_history_formats_are_normalised():
    pairs = [["hi", "hello"], ["q", None]]
    assert normalize_history(pairs) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "q"},
    ]
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}]}, {"role": "system", "content": "ignored"}]
    assert normalize_history(messages) == [{"role": "user", "content": "x"}]
    assert normalize_history(None) == []


def test_support_check_rejects_invented_numbers():
    sources = ["Standard shipping costs ¥8 and is free on orders of ¥99 or more."]
    assert is_supported("Standard shipping costs ¥8, free on orders of ¥99 or more [1].", sources)
    assert not is_supported("Standard shipping costs ¥10 [1].", sources)
    assert not is_supported("We offer lifetime warranty on everything and free pizza.", sources)
    assert not is_supported("", sources)


def test_support_with_fake_embedder(services):
    result = services.support.chat("How long does delivery take?")
    assert result["output_id"] and isinstance(result["handoff"], bool)
    with pytest.raises(AigcError, match="message is empty"):
        services.support.chat("   ")


@pytest.mark.slow
def test_embedder_trust_is_measured_per_script_on_the_kb(real_support):
    from aigc_demo.config import Settings
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.support.retrieval import HybridIndex

    # The offline multilingual E5 matches questions to their answers in both scripts...
    trust = real_support.index().dense_trust
    assert trust["latin"] > 0.6 and trust["cjk"] > 0.6
    # ...the English MiniLM only in English, so it gets no say for Chinese. Both measured on
    # the KB's vectors from the session cache, as the app reads them (seeded with what
    # `make setup` embedded: named by KB fingerprint and model, so the same vectors; ~3 s of
    # MiniLM otherwise).
    cache_dir = real_support.settings.cache_dir
    minilm = ModelRegistry(Settings(embed_model="packaged:all-minilm-l6-v2", cache_dir=cache_dir)).get("embed")
    trust = HybridIndex(real_support.index().kb, minilm, cache_dir=cache_dir).dense_trust
    assert trust["latin"] > 0.7
    assert trust["cjk"] < 0.3


@pytest.mark.slow
def test_index_embeddings_are_cached_and_reused(real_support, monkeypatch):
    from aigc_demo.services.support.retrieval import HybridIndex

    index = real_support.index()
    calls = []
    embedder = index.embedder
    monkeypatch.setattr(embedder, "embed", lambda texts: calls.append(len(texts)) or HybridIndex.__init__)
    again = HybridIndex(index.kb, embedder, cache_dir=real_support.settings.cache_dir)
    assert calls == [] and (again.vectors == index.vectors).all()


def test_results_expose_answer_mode_and_confidence(services):
    result = services.support.chat("How long does delivery take?")
    assert result["answer_mode"] == "extractive" and 0 <= result["confidence"] <= 1
    assert services.support.chat("I want a human")["answer_mode"] is None


@pytest.mark.slow
def test_one_upvote_does_not_answer_unrelated_questions(real_support, tmp_path):
    """E5 puts any two questions above 0.8 cosine: a verified answer needs the same words."""
    from aigc_demo.feedback.service import FeedbackService

    settings = real_support.settings.model_copy(update={"data_dir": tmp_path})
    support = SupportService(real_support.registry, FeedbackService(tmp_path), settings)
    first = support.chat("How long do refunds take?")
    support.feedback.rate(first["output_id"], "up")
    for question in ["How do I reset my password?", "Can I pay with PayPal?", "What's the weather like?"]:
        assert not any(s.get("verified") for s in support.chat(question)["sources"])
    assert support.chat("How long do refunds take?")["sources"][0].get("verified")


@pytest.mark.slow
def test_a_new_topic_after_a_question_is_not_glued_to_it(real_support):
    history = [
        {"role": "user", "content": "How long does delivery take?"},
        {"role": "assistant", "content": "3-5 days"},
    ]
    # None of its own words is in the KB: context must not lend it the delivery entry's words.
    result = real_support.chat("How fast does a spaceship fly?", history)
    assert result["handoff"] and result["handoff_reason"] == "low_confidence"


def test_the_support_index_is_built_at_start_when_the_server_is_quiet(settings, fake_registry):
    import time

    from aigc_demo.app_services import build_services
    from aigc_demo.ui.demo import create_demo

    writing = [True]
    fake_registry.generating = lambda: writing[0]
    settings = settings.model_copy(update={"preload": True})
    services = build_services(settings, registry=fake_registry)
    demo = create_demo(settings, services=services)
    time.sleep(0.5)
    assert not services.support.is_ready  # it waits for the page to be served…
    demo.is_running = True
    time.sleep(0.5)
    assert not services.support.is_ready  # …and for the answer being written
    writing[0] = False
    deadline = time.monotonic() + 30
    while not services.support.is_ready and time.monotonic() < deadline:
        time.sleep(0.02)
    assert services.support.is_ready  # built before anyone asked
    assert services.support.chat("退款多久到账？")["sources"]


def test_a_failed_preload_leaves_the_error_for_the_first_question(settings, fake_registry, tmp_path, caplog):
    import time

    from aigc_demo.errors import AigcError
    from aigc_demo.feedback.service import FeedbackService

    empty = tmp_path / "empty-kb"
    empty.mkdir()
    support = SupportService(
        fake_registry, FeedbackService(settings.data_dir), settings.model_copy(update={"support_kb": empty})
    )
    support.preload()
    deadline = time.monotonic() + 10
    while "not preloaded" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "not preloaded" in caplog.text and not support.is_ready
    with pytest.raises(AigcError, match="knowledge base is empty"):
        support.chat("退款多久到账？")


def test_every_handoff_reason_speaks_both_languages_to_both_readers():
    # One table owns each reason: the customer's words, the team's label, the knowledge-gap flag.
    from aigc_demo.services.support.learning import GAP_REASONS
    from aigc_demo.services.support.policy import HANDOFF_REASONS
    from aigc_demo.ui.i18n import tr

    for key, reason in HANDOFF_REASONS.items():
        assert set(reason.message) == set(reason.label) == {"en", "zh"}, key
        assert reason.message["zh"].format(names="X") and reason.message["en"].format(names="X")
        assert tr(f"handoff_reason_{key}", "zh") == reason.label["zh"]
    assert GAP_REASONS == {"low_confidence", "not_covered"}


def load_kb_rows(tmp_path, line: str) -> list:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "f.jsonl").write_text(line + "\n", encoding="utf-8")
    return load_kb(folder).problems


def index_of(tmp_path, fake_registry, rows: list[dict]):
    """A HybridIndex over ``rows`` (a JSONL FAQ), on the fake embedder."""
    import json

    from aigc_demo.services.support.retrieval import HybridIndex

    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    (tmp_path / "faq.jsonl").write_text("\n".join(lines), encoding="utf-8")
    return HybridIndex(load_kb(tmp_path), fake_registry.get("embed"))


def test_a_topic_the_kb_has_in_both_languages_is_answered_in_the_askers(tmp_path, fake_registry):
    # Issue 26: "那新疆要多久?" was answered from the English entry though a Chinese one exists.
    index = index_of(
        tmp_path,
        fake_registry,
        [
                {"id": "ship-en", "question": "How long does shipping to Xinjiang take?",
                 "answer": "Standard shipping takes 3-5 business days; Xinjiang and Tibet 7-10 days."},
                {"id": "ship-zh", "question": "配送时效", "answer": "一般 3-5 个工作日送达，偏远地区 7-10 天。"},
                {"id": "invoice-en", "question": "Can I get an invoice?", "answer": "Yes, from the order page."},
                {"id": "invoice-zh", "question": "可以开发票吗", "answer": "可以，在订单页申请。"},
                {"id": "hours-en", "question": "When is support open?", "answer": "9:00-21:00 every day."},
        ],
    )  # fmt: skip
    hits, _ = index.search("新疆 shipping 要多久呀")  # mostly Chinese; "shipping" matches the English entry
    assert hits[0].entry.id == "ship-zh"
    hits, _ = index.search("How long does shipping to Xinjiang take?")
    assert hits[0].entry.id == "ship-en"


def test_an_entry_or_question_is_in_the_language_most_of_it_is_written_in(tmp_path, fake_registry):
    # Issue 26: an English entry naming "(普通发票)" counted as Chinese, so a Chinese question could
    # land on it and an English question with one Chinese word was answered as if Chinese.
    from aigc_demo.services.support.bot import _lang

    index = index_of(
        tmp_path,
        fake_registry,
        [
                {"id": "invoice-en", "question": "Can I get an invoice?",
                 "answer": "Electronic invoices (普通发票) are emailed within 24 hours of delivery."},
                {"id": "invoice-zh", "question": "可以开发票吗", "answer": "可以，普通发票签收后 24 小时内发邮箱。"},
                {"id": "hours-en", "question": "When is support open?", "answer": "9:00-21:00 every day."},
                {"id": "hours-zh", "question": "客服几点上班", "answer": "每天 9:00-21:00。"},
        ],
    )  # fmt: skip
    assert index.is_cjk.tolist() == [False, True, False, True]
    hits, _ = index.search("Can I get an invoice 发票 for my order?")
    assert hits[0].entry.id == "invoice-en"
    hits, _ = index.search("普通发票怎么开")
    assert hits[0].entry.id == "invoice-zh"
    assert _lang("Can I get an invoice 发票 for my order?") == "en"
    assert _lang("我的iPhone订单怎么退款") == "zh" and _lang("iCloud同步失败") == "zh"
    assert _lang("123", [{"role": "user", "content": "运费多少"}]) == "zh"


def test_a_new_rule_and_handoff_reason_is_one_method_one_entry_and_its_messages(settings, fake_registry, monkeypatch):
    # Issue 27, the worked example of README › Contributing › "Add a support rule": a rule that
    # hands a medical question to a person, with its own reason. Nothing else changes.
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.locales import LOCALES
    from aigc_demo.services.support import policy
    from aigc_demo.services.support.bot import Decision, SupportService

    monkeypatch.setitem(LOCALES["en"], "handoff_message_medical", "A nurse will answer that.")
    monkeypatch.setitem(LOCALES["zh"], "handoff_message_medical", "这个问题将由护士为您解答。")
    monkeypatch.setitem(LOCALES["en"], "handoff_reason_medical", "medical question")
    monkeypatch.setitem(LOCALES["zh"], "handoff_reason_medical", "医疗问题")
    monkeypatch.setitem(policy.HANDOFF_REASONS, "medical", policy.HandoffReason("medical"))
    monkeypatch.setitem(policy.HANDOFF, "medical", policy.HANDOFF_REASONS["medical"].message)

    class Clinic(SupportService):
        @property
        def rules(self):
            return (self._rule_medical, *super().rules)

        def _rule_medical(self, turn):
            return Decision(reason="medical") if "发烧" in turn.text else None

    bot = Clinic(fake_registry, FeedbackService(settings.data_dir), settings)
    reply = bot.chat("孩子发烧了怎么办")
    assert reply["handoff"] and reply["answer"].startswith("这个问题将由护士为您解答。")
    assert bot.feedback.read("handoffs").records[-1]["reason"] == "medical"
    assert not bot.chat("退款多久到账？")["handoff"]  # the other rules still run after it


def test_a_kb_that_gains_one_entry_embeds_only_that_entry_again(tmp_path, fake_registry):
    # An operator's answer saved to the KB rebuilt the index: every entry was embedded again
    # (15 s on 2 cores for the bundled FAQ). Now only the new entry's texts are.
    import numpy as np

    from aigc_demo.services.support.retrieval import HybridIndex

    embedder = fake_registry.get("embed")
    calls: list[list[str]] = []
    original = embedder.embed

    def counting(texts):
        calls.append(list(texts))
        return original(texts)

    embedder.embed = counting
    rows = [
        {"id": "ship", "question": "配送要多久？", "answer": "一般 3-5 个工作日送达。"},
        {"id": "refund", "question": "退款多久到账？", "answer": "原路退回，1-3 个工作日到账。"},
    ]
    first = index_of(tmp_path, fake_registry, rows)
    assert sum(len(c) for c in calls) == 6  # text, question and answer of each entry
    calls.clear()
    (tmp_path / "resolved.jsonl").write_text(
        '{"id": "invoice", "question": "发票怎么开？", "answer": "在订单详情页申请电子发票。"}', encoding="utf-8"
    )
    again = HybridIndex(load_kb(tmp_path), embedder)
    assert sum(len(c) for c in calls) == 3 and all("发票" in text for text in calls[0])
    # The same vectors as a fresh embedding, in the new order.
    assert np.allclose(again.vectors, original([e.text for e in again.kb.entries]))
    assert len(first.kb.entries) == 2 and len(again.kb.entries) == 3
