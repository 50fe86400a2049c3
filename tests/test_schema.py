from __future__ import annotations

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
