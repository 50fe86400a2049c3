"""Aggregates and interval maths against hand-computed values."""

from __future__ import annotations

import math

import pytest

from aigc_demo.feedback.insights import coverage, like_rates, two_proportion_p, wilson


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (8, 10, 0.4902, 0.9433),  # p=0.8: centre 0.7168, half 0.2265 (by hand from the Wilson formula)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval(k, n, lo, hi):
    got = wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_of_nothing_is_everything():
    assert wilson(0, 0) == (0.0, 1.0)


def test_two_proportion_test():
    # 60/100 vs 40/100: pooled 0.5, se = sqrt(0.25 * 0.02) = 0.0707, z = 2.828, p = 0.00468
    assert two_proportion_p(60, 100, 40, 100) == pytest.approx(0.004678, abs=1e-5)
    assert two_proportion_p(5, 10, 5, 10) == pytest.approx(1.0)
    assert two_proportion_p(1, 0, 1, 1) == 1.0


def _r(oid, tab, rating, **kw):
    return {"output_id": oid, "tab": tab, "rating": rating, "model": {"id": kw.pop("model", "m")}, **kw}


def test_like_rates_use_the_latest_rating_of_each_output():
    records = [
        _r("a", "text", "down"),
        _r("a", "text", "up"),  # re-rated: counts once, as up
        _r("b", "text", "down"),
        _r("c", "image", "up"),
        _r("d", "image", "up", item=0),
        _r("d", "image", "down", item=1),  # two images rated alone
    ]
    rows = {r.group: r for r in like_rates(records, "tab")}
    assert (rows["text"].up, rows["text"].down) == (1, 1)
    assert (rows["image"].up, rows["image"].down) == (2, 1)
    assert math.isclose(rows["image"].rate, 2 / 3)


def test_coverage_counts_rated_generations_per_tab():
    events = [{"tab": "text", "output_id": x} for x in "abc"] + [{"tab": "image", "output_id": "d"}]
    ratings = [_r("a", "text", "up"), _r("a", "text", "down"), _r("d", "image", "up")]
    assert coverage(ratings, events) == {"image": {"generated": 1, "rated": 1}, "text": {"generated": 3, "rated": 1}}


def test_report_filters_and_totals():
    from aigc_demo.feedback.insights import report

    ratings = [
        _r("a", "text", "up", ts="2026-11-01T10:00:00Z", session_id="s1", comment=""),
        _r(
            "b",
            "text",
            "down",
            ts="2026-11-02T10:00:00Z",
            session_id="s1",
            comment="meh",
            prompt="p",
            output={"text": "t"},
        ),
        _r("c", "image", "down", ts="2026-11-02T11:00:00Z", session_id="s2", output={"path": "/srv/images/x.png"}),
    ]
    events = [
        {"tab": t, "output_id": o, "ts": ts, "session_id": s}
        for o, t, ts, s in [
            ("a", "text", "2026-11-01T09:00:00Z", "s1"),
            ("b", "text", "2026-11-02T09:00:00Z", "s1"),
            ("c", "image", "2026-11-02T10:00:00Z", "s2"),
            ("d", "text", "2026-11-03T09:00:00Z", "s3"),
        ]
    ]
    everything = report(ratings, events)
    assert everything["totals"]["generations"] == 4 and everything["totals"]["ratings"] == 3
    assert everything["totals"]["up"] == 1 and everything["totals"]["sessions"] == 3
    assert [d["day"] for d in everything["daily"]] == ["2026-11-01", "2026-11-02"]
    # newest first; an image by its file name, never the server's absolute path
    assert [d["output"] for d in everything["downvotes"]] == ["🖼 x.png", "t"]
    # ... while the admin's thumbnail gallery still finds the file (no table column shows it)
    assert [d["image"] for d in everything["downvotes"]] == ["/srv/images/x.png", ""]
    only_s1 = report(ratings, events, session="s1")
    assert only_s1["totals"]["ratings"] == 2 and only_s1["coverage"] == {"text": {"generated": 2, "rated": 2}}
    since = report(ratings, events, since="2026-11-02", tab="text")
    assert since["totals"]["ratings"] == 1 and since["totals"]["down"] == 1
    until = report(ratings, events, until="2026-11-01")
    assert until["totals"]["ratings"] == 1


def test_the_downvoted_image_gallery_finds_the_files(tmp_path):
    from aigc_demo.feedback.insights import report
    from aigc_demo.ui.tabs.insights import downvoted_images

    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG")
    ratings = [
        _r("c", "image", "down", comment="blurry", output={"path": str(png)}),
        _r("e", "image", "down", output={"path": str(tmp_path / "gone.png")}),
    ]
    rows = report(ratings, [])["downvotes"]
    assert downvoted_images(rows) == [(str(png), "blurry")]  # the deleted one is left out
