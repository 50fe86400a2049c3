"""Customer-support human-handoff metrics, from the stored records (pure functions).

Two questions a product owner asks of the support bot and its operators:

* **How often does the bot hand a conversation to a person?** :func:`handoff_rates`, per
  model, A/B variant or session, with a 95 % Wilson interval (the same one the like-rates
  use: a demo has tens of answers, not thousands).
* **How well do the people then serve the customer?** :func:`service_times`: time to the
  first operator reply, time to resolution, CSAT, tickets still open.

Every function takes the *record dicts* as ``FeedbackService.read(name).records`` returns
them (``events``, ``handoffs``, ``handoff_messages``, ``handoff_updates``, ``csat``), not the
support service's ``Ticket`` view, so the Insights tab, the CLI and the session report
compute the same numbers from the same files. They read the streams the way the ticket view
(``services/support/handoffs.py``) folds them: a schema-1 handoff's number is its ``id``;
messages, updates and scores of unknown tickets are ignored; the latest status update wins
(ties: the later line); the first CSAT stored for a ticket stands.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aigc_demo.feedback.insights import GROUPINGS, generations, wilson

SUPPORT_TAB = "support"
CLOSED = ("resolved", "returned")
STATUSES = ("open", *CLOSED)

# Student's t, two-sided 95 % (the 0.975 quantile), for 1..30 degrees of freedom; beyond 30
# the Cornish-Fisher expansion around the normal quantile is good to about 1e-4.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959963984540054


def _group_of(by: str, event: dict[str, Any]) -> str:
    if by == "model":
        return GROUPINGS["model"](event)  # the model's id, as the like-rates name it
    if by == "variant":
        return str(event.get("variant") or "")
    return str(event.get("session_id") or "")


def handoff_rates(events: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """How often the support bot's answers were handed to a person, per ``by`` (``"model"``,
    ``"variant"`` or ``"session"``).

    Counts the support tab's generation events, once per output (the events Insights counts
    as generations); a handoff is an answer whose ``output["handoff"]`` is true. Answers with
    no variant (``by="variant"``) or no session code (``by="session"``) are left out of that
    grouping. Rows: ``{"by", "answers", "handoffs", "rate", "ci_low", "ci_high"}`` with the
    95 % Wilson interval of ``rate``; most answers first, then by value.
    """
    if by not in ("model", "variant", "session"):
        raise ValueError(f"handoff_rates: by must be model, variant or session, not {by!r}")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in generations(events):
        if event.get("tab") != SUPPORT_TAB:
            continue
        group = _group_of(by, event)
        if not group:
            continue
        output = event.get("output")
        counts[group][0] += 1
        counts[group][1] += isinstance(output, dict) and output.get("handoff") is True
    rows = []
    for group, (answers, handoffs) in counts.items():
        lo, hi = wilson(handoffs, answers)
        rows.append(
            {
                "by": group,
                "answers": answers,
                "handoffs": handoffs,
                "rate": handoffs / answers,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return sorted(rows, key=lambda r: (-r["answers"], r["by"]))


def _when(ts: Any) -> datetime | None:
    """A record's ``ts`` ("2026-12-06T16:10:13.245Z" or "+00:00"); None when unreadable.
    A time without a zone is taken as UTC (the app writes UTC only)."""
    try:
        moment = datetime.fromisoformat(str(ts))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(start: Any, end: Any = None) -> float | None:
    """Seconds from one record's ``ts`` to another's (``end`` None: to now); None when either
    is unreadable."""
    begin, finish = _when(start), (datetime.now(UTC) if end is None else _when(end))
    if begin is None or finish is None:
        return None
    # Two replicas' clocks may disagree by a little: a reply is never before its ticket.
    return max(0.0, (finish - begin).total_seconds())


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between the closest ranks (numpy's
    default, Excel's PERCENTILE.INC): the median of 1, 2, 3, 10 is 2.5, its p90 7.9; None
    when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _durations(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "median_s": percentile(values, 0.5), "p90_s": percentile(values, 0.9)}


def t975(df: int) -> float:
    """Student's t 0.975 quantile (the two-sided 95 % critical value) for ``df`` ≥ 1."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def csat_summary(scores: list[int]) -> dict[str, Any]:
    """Mean CSAT with a 95 % Student-t interval: mean ± t(0.975, n-1) · s / √n, clipped to
    the scale [1, 5].

    One score says nothing of the spread, so for n == 1 the interval is the whole scale
    [1, 5]; with n == 0 the mean and interval are None. When every score is the same, s is 0
    and the interval is that one value: the t-interval's own answer, which a reader should
    take with its n (the report always shows n next to it).
    """
    n = len(scores)
    if n == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    mean = statistics.fmean(scores)
    if n == 1:
        return {"n": 1, "mean": mean, "ci_low": 1.0, "ci_high": 5.0}
    half = t975(n - 1) * statistics.stdev(scores) / math.sqrt(n)
    return {"n": n, "mean": mean, "ci_low": max(1.0, mean - half), "ci_high": min(5.0, mean + half)}


def service_times(
    handoffs: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    csat: list[dict[str, Any]],
    session: str = "",
) -> dict[str, Any]:
    """How the people served the tickets in ``handoffs`` (all of them, or those of one
    ``session`` code).

    * ``first_reply``: per ticket that has one, the first operator message (by time) minus
      the ticket's opening ``ts``; a ticket nobody answered is not counted.
    * ``resolution``: per ticket that has one, the first ``resolved`` update minus its
      opening (a ticket handed back to the bot, or still open, is not counted).
    * ``csat``: one score per ticket (the first stored record; out-of-range ones skipped),
      see :func:`csat_summary`.
    * ``open``: tickets whose latest update is neither resolved nor returned (no update: open).

    Durations are seconds: ``{"n", "median_s", "p90_s"}``, percentiles by linear
    interpolation (:func:`percentile`), None when n == 0. Also ``tickets``: how many.
    """
    opened = _opened(handoffs, session)
    first_reply = _earliest(opened, (m for m in messages if m.get("role") == "operator"))
    first_resolved = _earliest(opened, (u for u in updates if u.get("status") == "resolved"))
    return {
        "tickets": len(opened),
        "first_reply": _durations(list(first_reply.values())),
        "resolution": _durations(list(first_resolved.values())),
        "csat": csat_summary(_first_scores(opened, csat)),
        "open": sum(status not in CLOSED for status in _latest_status(opened, updates).values()),
    }


def _opened(handoffs: list[dict[str, Any]], session: str) -> dict[str, str]:
    """Ticket number -> when it was opened (a schema-1 record's number is its id)."""
    opened: dict[str, str] = {}
    for record in handoffs:
        number = str(record.get("ticket") or record.get("id") or "")
        if number and (not session or record.get("session_id") == session):
            opened[number] = str(record.get("ts", ""))  # as the ticket view: a later record replaces
    return opened


def _earliest(opened: dict[str, str], records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per ticket of ``opened``: seconds from its opening to the earliest of ``records``."""
    earliest: dict[str, float] = {}
    for record in records:
        number = str(record.get("ticket", ""))
        if number not in opened:
            continue
        span = seconds_between(opened[number], record.get("ts"))
        if span is not None:
            earliest[number] = min(earliest.get(number, span), span)
    return earliest


def _latest_status(opened: dict[str, str], updates: list[dict[str, Any]]) -> dict[str, str]:
    """Every ticket's status: its latest update's (ties: the later line), else open."""
    latest: dict[str, tuple[str, str]] = {number: ("", "open") for number in opened}
    for update in updates:
        number, ts, status = str(update.get("ticket", "")), str(update.get("ts", "")), update.get("status")
        if number in latest and status in STATUSES and ts >= latest[number][0]:
            latest[number] = (ts, str(status))
    return {number: status for number, (_, status) in latest.items()}


def _first_scores(opened: dict[str, str], csat: list[dict[str, Any]]) -> list[int]:
    """One CSAT per ticket of ``opened``: the first valid one stored."""
    scores: dict[str, int] = {}
    for record in csat:
        number, score = str(record.get("ticket", "")), record.get("csat")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            continue  # a shape no writer of this app makes: skipped, as readers skip bad lines
        if number in opened and number not in scores:
            scores[number] = score
    return list(scores.values())
