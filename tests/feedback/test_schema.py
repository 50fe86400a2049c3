from __future__ import annotations

import pytest

from aigc_demo.feedback.schema import SCHEMA_VERSION, FeedbackRecord


def _record(**kw) -> FeedbackRecord:
    base = {
        "tab": "text",
        "output_id": "o1",
        "rating": "up",
        "model": {"id": "m"},
        "params": {"seed": 1},
        "output": {"text": "hi"},
    }
    return FeedbackRecord(**{**base, **kw})


def test_round_trip():
    rec = _record(comment="好", reasons=["great"], prompt="p")
    data = rec.to_dict()
    assert data["schema"] == SCHEMA_VERSION == 1
    assert FeedbackRecord.from_dict(data) == rec


def test_unknown_fields_survive_a_round_trip():
    data = _record().to_dict() | {"future_field": {"x": 1}}
    again = FeedbackRecord.from_dict(data).to_dict()
    assert again["future_field"] == {"x": 1}
    assert again == data


def test_newer_schema_is_read_without_loss():
    data = _record().to_dict() | {"schema": 99, "new": True}
    rec = FeedbackRecord.from_dict(data)
    assert rec.schema == 99 and rec.extra == {"new": True}


def test_stream_records_carry_id_ts_schema_and_their_type():
    from aigc_demo.feedback.schema import ArenaPairEvent, GenerationEvent, HandoffRecord, HandoffUpdate

    event = GenerationEvent(id="o1", output_id="o1", tab="text", model={"id": "m"}, params={}, output={"text": "你好"})
    data = event.to_dict()
    assert data["type"] == "generation" and data["id"] == data["output_id"] == "o1" and data["schema"] == 1
    assert data["ts"].endswith("Z")
    pair = ArenaPairEvent(pair_id="p", kind="text", prompt="写诗", a={}, b={}).to_dict()
    assert pair["type"] == "arena_pair"
    handoff = HandoffRecord(
        ticket="T-1",
        output_id="o1",
        session_id="",
        reason="requested",
        lang="zh",
        mood=None,
        summary="Reason: requested",
        messages=[{"role": "user", "content": "转人工"}],
        sources=[],
    ).to_dict()
    assert handoff["schema"] == 2 and handoff["ticket"] == "T-1"
    assert HandoffUpdate(ticket="T-1", status="resolved", resolution="已退款").to_dict()["kb_entry"] == ""
    with pytest.raises(TypeError):  # a record is written whole: a missing field is a bug, not a blank
        HandoffRecord(ticket="T-2")
