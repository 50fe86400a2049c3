"""A/B variants: parsing, sticky weighted assignment, overrides applied and recorded, comparison."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aigc_demo.app_services import build_services
from aigc_demo.config import load_settings
from aigc_demo.errors import SettingsError
from aigc_demo.feedback.insights import compare_variants
from aigc_demo.variants import assign, parse_variants

VARIANTS = {
    "text": [
        {"name": "A", "weight": 3},
        {"name": "B", "weight": 1, "system": "Answer in one sentence.", "temperature": 0.2},
    ],
    "image": [{"name": "fast", "steps": 2}, {"name": "slow", "steps": 6}],
}


def test_assignment_is_sticky_and_follows_the_weights():
    table = parse_variants(json.dumps(VARIANTS))
    assert all(assign(table, "text", "s1") == assign(table, "text", "s1") for _ in range(5))
    counts = Counter(assign(table, "text", f"session-{i}").name for i in range(8000))
    assert abs(counts["A"] / 8000 - 0.75) < 0.02 and abs(counts["B"] / 8000 - 0.25) < 0.02
    assert assign(table, "support", "s1") is None and assign(table, "text", "") is None


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"video": []}', "must map tabs"),
        ('{"text": [{"weight": 1}]}', "needs a name"),
        ('{"text": [{"name": "A", "weight": 0}]}', "weight must be a positive number"),
        ('{"text": [{"name": "A"}, {"name": "A"}]}', "duplicate names"),
    ],
)
def test_bad_variants_fail_at_start(monkeypatch, raw, needle):
    monkeypatch.setenv("AIGC_VARIANTS", raw)
    with pytest.raises(SettingsError, match=needle):
        load_settings()


def test_overrides_are_applied_and_recorded(monkeypatch, fake_registry):
    monkeypatch.setenv("AIGC_VARIANTS", json.dumps(VARIANTS))
    settings = load_settings()
    fake_registry.settings = settings
    services = build_services(settings, registry=fake_registry)
    table = settings.variant_table
    session = next(f"s{i}" for i in range(100) if assign(table, "text", f"s{i}").name == "B")
    result = services.text.generate("hi", session_id=session)
    request = services.registry.get("text").requests[-1]
    assert result["variant"] == "B" and request.temperature == 0.2
    assert request.messages[0] == {"role": "system", "content": "Answer in one sentence."}
    record = services.feedback.rate(result["output_id"], "up")
    assert record.variant == "B"
    assert services.feedback.read("events").records[-1]["variant"] == "B"
    image_session = next(f"s{i}" for i in range(100) if assign(table, "image", f"s{i}").name == "slow")
    steps = []
    services.image.generate("x", width=64, height=64, session_id=image_session, on_step=lambda s, t: steps.append(t))
    assert steps[-1] == 6


def test_comparison_reports_significance():
    records = [{"output_id": f"a{i}", "variant": "A", "rating": "up" if i < 40 else "down"} for i in range(100)]
    records += [{"output_id": f"b{i}", "variant": "B", "rating": "up" if i < 60 else "down"} for i in range(100)]
    (line,) = compare_variants(records)
    assert line.startswith("B vs A: 60% vs 40% (+20 points, n=100/100), p=0.005") and "significant at the 5 %" in line
    few = [{"output_id": "a", "variant": "A", "rating": "up"}, {"output_id": "b", "variant": "B", "rating": "down"}]
    assert "not significant yet" in compare_variants(few)[0]


def test_support_variant_overrides_the_handoff_threshold(monkeypatch, fake_registry):
    monkeypatch.setenv("AIGC_VARIANTS", json.dumps({"support": [{"name": "strict", "min_confidence": 0.99}]}))
    settings = load_settings()
    services = build_services(settings, registry=fake_registry)
    result = services.support.chat("How long does delivery take?", session_id="s1")
    assert result["handoff"] and result["handoff_reason"] == "low_confidence" and result["confidence"] < 0.99
    assert services.feedback.read("events").records[-1]["variant"] == "strict"
    baseline = services.support.chat("How long does delivery take?", session_id="")  # no variant
    assert not baseline["handoff"]


def test_insights_tab_is_closed_without_the_admin_token(monkeypatch, settings, fake_registry):
    from aigc_demo.ui.demo import create_demo

    def elem_ids(demo):
        return {getattr(b, "elem_id", None) for b in demo.blocks.values()}

    closed = create_demo(settings, registry=fake_registry)
    assert "insights-refresh" not in elem_ids(closed) and "insights-token" not in elem_ids(closed)
    monkeypatch.setenv("AIGC_ADMIN_TOKEN", "s3cret")
    opened = create_demo(load_settings(), registry=fake_registry)
    assert {"insights-refresh", "insights-token"} <= elem_ids(opened)
