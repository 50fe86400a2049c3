"""Human-handoff metrics: handoff rates with Wilson intervals, operator reply and resolution
times, CSAT, and the session report's human-service line. Hand-built records, known answers.
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from aigc_demo.feedback.insights import wilson
from aigc_demo.feedback.report import session_report
from aigc_demo.feedback.support_metrics import csat_summary, handoff_rates, percentile, service_times, t975


def _answer(oid, model="qwen", handoff=False, variant=None, session="s1", tab="support", **kw):
    return {
        "type": "generation",
        "id": oid,
        "output_id": oid,
        "tab": tab,
        "model": {"id": model},
        "output": {"text": "您好，请问有什么可以帮您？", "handoff": handoff},
        "prompt": "空调移机怎么收费",
        "variant": variant,
        "session_id": session,
        "ts": "2026-12-06T10:00:00.000Z",
        **kw,
    }


EVENTS = [
    _answer("a1", "qwen", False, "A", "s1"),
    _answer("a2", "qwen", True, "A", "s1"),
    _answer("a3", "qwen", False, "B", "s2"),
    _answer("a4", "qwen", False, None, "s2"),
    _answer("b1", "glm", True, "B", "s2"),
    _answer("b2", "glm", True, None, ""),
    _answer("a1", "qwen", True, "A", "s1"),  # the same output logged twice counts once
    _answer("t1", "qwen", True, "A", "s1", tab="text"),  # not a support answer
    {"type": "arena_pair", "pair_id": "p1", "tab": "support", "session_id": "s1"},  # not an answer at all
]


def _row(rows, value):
    return next(r for r in rows if r["by"] == value)


def test_handoff_rate_per_model_with_its_wilson_interval():
    rows = handoff_rates(EVENTS, "model")
    assert [(r["by"], r["answers"], r["handoffs"]) for r in rows] == [("qwen", 4, 1), ("glm", 2, 2)]
    qwen = _row(rows, "qwen")
    assert qwen["rate"] == 0.25 and (qwen["ci_low"], qwen["ci_high"]) == wilson(1, 4)
    # By hand: p=0.25, n=4, z=1.96: centre 0.3218, half 0.2762.
    assert qwen["ci_low"] == pytest.approx(0.0456, abs=1e-4) and qwen["ci_high"] == pytest.approx(0.6994, abs=1e-4)
    glm = _row(rows, "glm")
    assert glm["rate"] == 1.0 and (glm["ci_low"], glm["ci_high"]) == wilson(2, 2) and glm["ci_high"] == 1.0


def test_handoff_rate_per_variant_leaves_out_answers_without_one():
    rows = handoff_rates(EVENTS, "variant")
    assert [(r["by"], r["answers"], r["handoffs"], r["rate"]) for r in rows] == [("A", 2, 1, 0.5), ("B", 2, 1, 0.5)]
    assert (_row(rows, "B")["ci_low"], _row(rows, "B")["ci_high"]) == wilson(1, 2)


def test_handoff_rate_per_session_leaves_out_answers_without_a_code():
    rows = handoff_rates(EVENTS, "session")
    assert [(r["by"], r["answers"], r["handoffs"]) for r in rows] == [("s2", 3, 1), ("s1", 2, 1)]
    assert sum(r["answers"] for r in rows) == 5  # b2 has no session code


def test_handoff_rates_of_nothing_and_a_bad_grouping():
    assert handoff_rates([], "model") == []
    with pytest.raises(ValueError, match="model, variant or session"):
        handoff_rates(EVENTS, "day")


# -- service times ----------------------------------------------------------------------------


def _ticket(number, ts, session="s1"):
    return {
        "id": f"id-{number}",
        "ticket": number,
        "ts": ts,
        "session_id": session,
        "reason": "human_request",
        "lang": "zh",
        "summary": "原因：human_request",
        "messages": [{"role": "user", "content": "我要转人工"}],
        "sources": [],
        "schema": 2,
    }


def _msg(number, role, ts, content="您好，我帮您查一下。"):
    return {"ticket": number, "role": role, "content": content, "ts": ts, "session_id": ""}


def _update(number, status, ts):
    return {"ticket": number, "status": status, "ts": ts, "resolution": "已为您安排师傅上门。"}


def _csat(number, score, comment="回复很快"):
    return {"ticket": number, "csat": score, "comment": comment, "session_id": "s1", "lang": "zh"}


HANDOFFS = [
    _ticket("T1", "2026-12-06T10:00:00.000Z"),
    _ticket("T2", "2026-12-06T11:00:00.000Z"),
    _ticket("T3", "2026-12-06T12:00:00.000Z"),
    _ticket("T4", "2026-12-06T13:00:00.000+00:00"),  # the other way of writing UTC
    _ticket("T5", "2026-12-06T14:00:00.000Z", session="s2"),
]
MESSAGES = [
    _msg("T1", "read", "2026-12-06T10:00:10.000Z", ""),  # opened, not answered
    _msg("T1", "customer", "2026-12-06T10:00:30.000Z", "我的订单号是 20261206"),
    _msg("T1", "operator", "2026-12-06T10:05:00.000Z"),
    _msg("T1", "operator", "2026-12-06T10:01:00.000Z"),  # another replica's file: earlier, read later
    _msg("T2", "operator", "2026-12-06T11:03:00.000Z"),
    _msg("T4", "operator", "2026-12-06T13:10:00.000Z"),
    _msg("T5", "operator", "2026-12-06T14:00:05.000Z"),
    _msg("T9", "operator", "2026-12-06T09:00:00.000Z"),  # no such ticket
]  # T3: never answered
UPDATES = [
    _update("T1", "resolved", "2026-12-06T10:30:00.000Z"),
    _update("T2", "resolved", "2026-12-06T12:00:00.000Z"),
    _update("T2", "open", "2026-12-06T12:10:00.000Z"),  # reopened: open again
    _update("T2", "resolved", "2026-12-06T12:20:00.000Z"),
    _update("T2", "open", "2026-12-06T12:30:00.000Z"),
    _update("T3", "returned", "2026-12-06T12:20:00.000Z"),  # back to the bot: closed, not resolved
    _update("T5", "resolved", "2026-12-06T14:01:00.000Z"),
]
CSAT = [
    _csat("T1", 5),
    _csat("T1", 1, "再评一次"),  # a second score for one ticket: the first stands
    _csat("T2", 3, "等太久了"),
    _csat("T3", 4),
    _csat("T4", 7),  # off the scale: skipped
    _csat("T4", True),  # not a number: skipped
    _csat("T5", 1, "没解决"),
]


def test_first_reply_resolution_csat_and_open_of_one_session():
    stats = service_times(HANDOFFS, MESSAGES, UPDATES, CSAT, session="s1")
    assert stats["tickets"] == 4
    # First operator replies: 60 s, 180 s, 600 s (T3 was never answered, so not counted).
    # Median 180; p90 by linear interpolation at rank 1.8: 180 + 0.8 · (600 − 180) = 516.
    assert stats["first_reply"] == {"n": 3, "median_s": 180.0, "p90_s": pytest.approx(516.0)}
    # First resolutions: T1 after 1800 s, T2 after 3600 s (its first one, before the reopening).
    assert stats["resolution"] == {"n": 2, "median_s": 2700.0, "p90_s": pytest.approx(3420.0)}
    assert stats["open"] == 2  # T2 reopened, T4 never updated; T1 resolved, T3 returned
    # CSAT 5, 3, 4: mean 4, s = 1, half-width t(0.975, 2) · 1 / √3 = 4.303 / 1.732 = 2.484.
    csat = stats["csat"]
    assert csat["n"] == 3 and csat["mean"] == 4.0
    assert csat["ci_low"] == pytest.approx(4 - 4.303 / math.sqrt(3), abs=1e-6) and csat["ci_high"] == 5.0  # clipped


def test_without_a_session_every_ticket_counts():
    stats = service_times(HANDOFFS, MESSAGES, UPDATES, CSAT)
    assert stats["tickets"] == 5
    assert stats["first_reply"]["n"] == 4 and stats["first_reply"]["median_s"] == pytest.approx(120.0)  # 5,60,180,600
    assert stats["resolution"]["n"] == 3 and stats["resolution"]["median_s"] == 1800.0  # 60, 1800, 3600
    assert stats["csat"]["n"] == 4 and stats["csat"]["mean"] == pytest.approx(13 / 4)
    assert service_times(HANDOFFS, MESSAGES, UPDATES, CSAT, session="s2")["first_reply"]["median_s"] == 5.0


def test_a_schema_1_ticket_is_numbered_by_its_id():
    old = {"id": "abc", "ts": "2026-12-06T10:00:00.000Z", "session_id": "s1", "messages": []}
    stats = service_times([old], [_msg("abc", "operator", "2026-12-06T10:00:42.000Z")], [], [])
    assert stats["first_reply"] == {"n": 1, "median_s": 42.0, "p90_s": 42.0} and stats["open"] == 1


def test_nothing_gives_zero_and_none_without_errors():
    nothing = {"n": 0, "median_s": None, "p90_s": None}
    assert service_times([], [], [], []) == {
        "tickets": 0,
        "first_reply": nothing,
        "resolution": nothing,
        "csat": {"n": 0, "mean": None, "ci_low": None, "ci_high": None},
        "open": 0,
    }
    # A ticket nobody touched: open, no times, no score.
    alone = service_times([_ticket("T1", "2026-12-06T10:00:00.000Z")], [], [], [])
    assert alone["tickets"] == 1 and alone["open"] == 1 and alone["first_reply"] == nothing
    # A session with no tickets, and records of tickets that are not there.
    assert service_times(HANDOFFS, MESSAGES, UPDATES, CSAT, session="无此会话")["tickets"] == 0


def test_percentiles_interpolate_between_ranks():
    assert percentile([10, 1, 3, 2], 0.5) == 2.5 and percentile([1, 2, 3, 10], 0.9) == pytest.approx(7.9)
    assert percentile([7], 0.9) == 7 and percentile([], 0.5) is None


def test_csat_interval_for_one_score_is_the_whole_scale():
    assert csat_summary([4]) == {"n": 1, "mean": 4.0, "ci_low": 1.0, "ci_high": 5.0}
    # 2, 4: mean 3, s = √2, half = 12.706 · √2 / √2 = 12.706: clipped to the scale.
    assert csat_summary([2, 4]) == {"n": 2, "mean": 3.0, "ci_low": 1.0, "ci_high": 5.0}
    many = csat_summary([4, 5] * 20)  # n=40, s = 0.5064, t(39) ≈ 2.0227
    assert many["mean"] == 4.5
    assert many["ci_low"] == pytest.approx(4.5 - 2.0227 * 0.50637 / math.sqrt(40), abs=1e-3)
    assert t975(1) == 12.706 and t975(30) == 2.042 and t975(120) == pytest.approx(1.9799, abs=1e-3)


# -- the session report ---------------------------------------------------------------------


def _report(handoffs, **streams):
    events = [_answer("a1", "qwen", True, session="s1"), _answer("a2", "qwen", False, session="s1")]
    return session_report("s1", [], events, handoffs, lang="zh", **streams)


def test_the_chinese_session_report_has_the_human_service_line():
    md = _report(HANDOFFS, messages=MESSAGES, updates=UPDATES, csat=CSAT)
    line = next(line for line in md.splitlines() if line.startswith("人工客服"))
    assert line == (
        "人工客服：共 **4** 个工单（2 个仍在处理）；客服首次回复用时中位数 3.0 分钟（p90 8.6 分钟，n=3）；"
        "解决用时中位数 45.0 分钟（p90 57.0 分钟，n=2）；满意度 **4.00**/5（95% 区间 1.52–5.00，n=3）。"
    )
    section = md.split("## 转人工")[1].split("## 竞技场投票")[0]
    assert line in section
    english = [w for w in ("Human service", "tickets", "median", "CSAT", "interval") if w in md]
    assert english == []


def test_the_english_line_and_what_is_missing():
    md = session_report("s1", [], [_answer("a1", session="s1")], HANDOFFS[:1], messages=[], lang="en")
    assert (
        "Human service: **1** tickets (1 still open); first operator reply median – (p90 –, n=0); "
        "resolved in median – (p90 –, n=0); CSAT –." in md
    )


def test_no_human_service_line_without_handoffs_or_ticket_streams():
    without_streams = _report(HANDOFFS)  # the streams were not given: the report as before
    assert "人工客服" not in without_streams and "- human\\_request: 我要转人工" in without_streams
    no_handoffs = _report([], messages=MESSAGES, updates=UPDATES, csat=CSAT)
    assert "人工客服" not in no_handoffs and "## 转人工\n\n无。" in no_handoffs


def test_metrics_of_a_real_handoff_agree_with_the_ticket_view(services):
    """Records as the app writes them: a handoff, an operator's reply, resolution, CSAT."""
    support, fb = services.support, services.feedback
    answered = support.chat("你好", session_id="真实会话")
    handed = support.chat("我要转人工", session_id="真实会话")
    assert handed["handoff"] and handed["ticket"] and not answered["handoff"]  # small talk: the bot answers
    support.handoffs.reply(handed["ticket"], "您好，以旧换新的客户移机费八折。")
    support.handoffs.resolve(handed["ticket"])
    support.handoffs.rate(handed["ticket"], 5, "很满意")
    ticket = support.handoffs.get(handed["ticket"])

    rows = handoff_rates(fb.read("events").records, "session")
    assert _row(rows, "真实会话")["answers"] == 2 and _row(rows, "真实会话")["handoffs"] == 1
    stats = service_times(
        fb.read("handoffs").records,
        fb.read("handoff_messages").records,
        fb.read("handoff_updates").records,
        fb.read("csat").records,
        session="真实会话",
    )

    def seconds(end):
        return (datetime.fromisoformat(end) - datetime.fromisoformat(ticket.ts)).total_seconds()

    assert stats["tickets"] == 1 and stats["open"] == 0
    assert stats["first_reply"]["median_s"] == pytest.approx(seconds(ticket.first_reply_ts))
    assert stats["resolution"]["median_s"] == pytest.approx(seconds(ticket.resolved_ts))
    assert stats["csat"] == {"n": 1, "mean": 5.0, "ci_low": 1.0, "ci_high": 5.0} and ticket.csat == 5
