"""Closing the loop in the support tab: verified answers, knowledge gaps, KB uploads."""

from __future__ import annotations

import pytest

from aigc_demo.app_services import build_services
from aigc_demo.errors import InvalidInput


def test_upvoted_answer_is_served_first_and_marked_verified(services):
    support, feedback = services.support, services.feedback
    first = support.chat("How long does delivery take?")
    assert not first["handoff"] and not first["sources"][0].get("verified")
    feedback.rate(first["output_id"], "up")
    again = support.chat("how long does delivery take")
    assert again["answer"] == first["answer"]
    top = again["sources"][0]
    assert top["verified"] is True and top["verified_from"] == first["output_id"]
    assert top["id"] == first["sources"][0]["id"]  # the KB entry it cites stays its id


def test_verified_survives_a_restart_and_a_downvote_revokes_it(services, settings, fake_registry):
    first = services.support.chat("How long does delivery take?")
    services.feedback.rate(first["output_id"], "up")
    restarted = build_services(settings, registry=fake_registry)
    served = restarted.support.chat("How long does delivery take?")
    assert served["sources"][0].get("verified") is True
    restarted.feedback.rate(served["output_id"], "down", "numbers are outdated")
    after = restarted.support.chat("How long does delivery take?")
    assert not after["sources"][0].get("verified")
    gaps = restarted.support.knowledge_gaps()
    assert gaps[0]["kind"] == "downvoted" and gaps[0]["comment"] == "numbers are outdated"
    assert gaps[0]["question"] == "How long does delivery take?"


def test_a_different_question_does_not_reuse_a_verified_answer(services):
    first = services.support.chat("How long does delivery take?")
    services.feedback.rate(first["output_id"], "up")
    other = services.support.chat("Which payment methods do you accept?")
    assert not other["sources"][0].get("verified")


def test_follow_ups_are_not_answered_from_verified(services):
    first = services.support.chat("How long does delivery take?")
    services.feedback.rate(first["output_id"], "up")
    history = [{"role": "user", "content": "How do refunds work?"}, {"role": "assistant", "content": "..."}]
    follow = services.support.chat("how long?", history)  # vague: it means the refund, not delivery
    assert not follow["sources"] or not follow["sources"][0].get("verified")


def test_low_confidence_handoffs_become_knowledge_gaps(services):
    result = services.support.chat("Do you sell spaceships to Mars colonies?")
    assert result["handoff"]
    gaps = services.support.knowledge_gaps()
    assert gaps[0]["question"] == "Do you sell spaceships to Mars colonies?"
    assert gaps[0]["kind"].startswith("handoff")


def test_upload_adds_then_replaces_then_resets(services, tmp_path):
    support = services.support
    base = len(support.kb.entries)
    faq = tmp_path / "extra.csv"
    faq.write_text(
        "id,question,answer\ngift-wrap,Do you offer gift wrapping?,Yes: gift wrapping costs ¥5 per item.\n",
        encoding="utf-8",
    )
    kb = support.install_files([faq], replace=False)
    assert len(kb.entries) == base + 1
    assert support.chat("Do you offer gift wrapping?")["sources"][0]["id"] == "gift-wrap"
    kb = support.install_files([faq], replace=True)
    assert [e.id for e in kb.entries] == ["gift-wrap"]
    kb = support.reset_uploads()
    assert len(kb.entries) == base


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("x.exe", b"MZ", "unsupported file type"),
        ("bad.jsonl", b"{not json}\n", "Nothing loaded from the upload: bad.jsonl, line 1: invalid JSON"),
        ("empty.csv", b"question,answer\n", "no question/answer entries"),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(services, tmp_path, name, content, needle):
    before = [e.id for e in services.support.kb.entries]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as info:
        services.support.install_files([path], replace=True)
    assert needle in info.value.message
    if name == "bad.jsonl":  # a Chinese page reads the file's problem in Chinese too
        assert "bad.jsonl 第 1 行：JSON 格式错误" in info.value.localized("zh")
    assert [e.id for e in services.support.kb.entries] == before


def test_a_short_new_question_is_not_glued_to_the_previous_one(services):
    history = [
        {"role": "user", "content": "How long does delivery take?"},
        {"role": "assistant", "content": "3-5 days"},
    ]
    result = services.support.chat("Do you sell spaceships?", history)
    assert result["handoff"]


def test_verified_source_is_shown_with_a_badge(services):
    from aigc_demo.ui.tabs.support import render_answer

    first = services.support.chat("How long does delivery take?")
    services.feedback.rate(first["output_id"], "up")
    shown = render_answer(services.support.chat("How long does delivery take?"))
    assert "✅ **verified answer**" in shown
