"""Turn ratings into numbers a product owner can act on.

Like-rates are computed on the *latest* rating of each output (a re-rating replaces the
earlier one) and come with 95 % Wilson score intervals, which stay sensible for small
counts (a demo session has tens of ratings, not thousands), unlike the normal
approximation. Two groups (A/B variants) are compared with a two-proportion z-test.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aigc_demo.feedback.schema import shown_output
from aigc_demo.tabs import tab_names

# Tabs whose outputs take 👍/👎 (Arena answers are judged by votes, on their own leaderboard).
RATED_TABS = tab_names(rated=True)

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval for k successes in n trials; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value that two like-rates differ (pooled z-test); 1.0 when undefined."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


@dataclass
class Rate:
    group: str
    up: int
    down: int

    @property
    def n(self) -> int:
        return self.up + self.down

    @property
    def rate(self) -> float:
        return self.up / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.up, self.n)

    def as_row(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {
            "group": self.group,
            "up": self.up,
            "down": self.down,
            "n": self.n,
            "like_rate": round(self.rate, 4) if self.n else None,
            "ci_low": round(lo, 4),
            "ci_high": round(hi, 4),
        }


def generations(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs that take 👍/👎, once each: the one definition of "a generation" that
    Insights, ``feedback stats`` and the session report count (an Arena pair event, or an
    event of a tab without ratings, is not one)."""
    seen: set[str] = set()
    out = []
    for e in events:
        oid = str(e.get("output_id") or "")
        if e.get("type", "generation") == "generation" and e.get("tab") in RATED_TABS and oid not in seen:
            seen.add(oid)
            out.append(e)
    return out


def latest_ratings(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last rating of each (output, image) — records must be in time order."""
    latest: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in records:
        latest[(r.get("output_id", ""), r.get("item"))] = r
    return list(latest.values())


GROUPINGS: dict[str, Callable[[dict[str, Any]], str]] = {
    "tab": lambda r: str(r.get("tab")),
    "model": lambda r: str((r.get("model") or {}).get("id")),
    "variant": lambda r: str(r.get("variant") or "-"),
    "day": lambda r: str(r.get("ts", ""))[:10],
    "session": lambda r: str(r.get("session_id") or "-"),
}


def like_rates(records: Iterable[dict[str, Any]], by: str) -> list[Rate]:
    key = GROUPINGS[by]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in latest_ratings(records):
        counts[key(r)][0 if r.get("rating") == "up" else 1] += 1
    return [Rate(group, up, down) for group, (up, down) in sorted(counts.items())]


def coverage(ratings: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per tab: generated outputs, rated outputs."""
    generated: dict[str, set[str]] = defaultdict(set)
    for e in events:
        generated[str(e.get("tab"))].add(e.get("output_id", ""))
    rated: dict[str, set[str]] = defaultdict(set)
    for r in ratings:
        rated[str(r.get("tab"))].add(r.get("output_id", ""))
    return {
        tab: {"generated": len(generated[tab]), "rated": len(rated[tab] & generated[tab])}
        for tab in sorted(set(generated) | set(rated))
    }


def filter_records(
    records: Iterable[dict[str, Any]],
    *,
    tab: str | None = None,
    since: str | None = None,
    until: str | None = None,
    session: str | None = None,
    variant: str | None = None,
) -> list[dict[str, Any]]:
    out = []
    for r in records:
        ts = str(r.get("ts", ""))
        if tab and r.get("tab") != tab:
            continue
        if since and ts < since:
            continue
        if until and ts[: len(until)] > until:
            continue
        if session and r.get("session_id") != session:
            continue
        if variant and (r.get("variant") or "-") != variant:
            continue
        out.append(r)
    return out


def report(ratings: list[dict[str, Any]], events: list[dict[str, Any]], **filters: Any) -> dict[str, Any]:
    """Everything the Insights tab shows, as plain rows (no UI types)."""
    ratings = filter_records(ratings, **filters)
    # Outputs that take 👍/👎 (other event types, such as an Arena pair, are not outputs at all).
    events = generations(filter_records(events, **filters))
    latest = latest_ratings(ratings)
    up = sum(r.get("rating") == "up" for r in latest)
    lo, hi = wilson(up, len(latest))
    daily = []
    for rate in like_rates(ratings, "day"):
        daily.append(
            {
                "day": rate.group,
                "like_rate": rate.rate,
                "ci_low": rate.interval[0],
                "ci_high": rate.interval[1],
                "n": rate.n,
            }
        )
    downvotes = [
        {
            "when": str(r.get("ts", ""))[:16].replace("T", " "),
            "tab": r.get("tab"),
            "prompt": str(r.get("prompt") or "")[:200],
            "output": shown_output(r.get("output"))[:300],
            # Not a table column: where the image lies, for the admin's thumbnail gallery.
            "image": _image_path(r),
            "comment": r.get("comment", ""),
            "reasons": ", ".join(r.get("reasons") or []),
            "sources": ", ".join(str(s.get("id")) for s in r.get("sources") or []),
        }
        for r in sorted(latest, key=lambda r: str(r.get("ts", "")), reverse=True)
        if r.get("rating") == "down"
    ][:50]
    return {
        "totals": {
            "generations": len(events),
            "ratings": len(latest),
            "up": up,
            "down": len(latest) - up,
            "like_rate": up / len(latest) if latest else None,
            "ci": (lo, hi),
            "sessions": len({r.get("session_id") for r in events if r.get("session_id")}),
        },
        "by_tab": [r.as_row() for r in like_rates(ratings, "tab")],
        "by_model": [r.as_row() for r in like_rates(ratings, "model")],
        "by_variant": [r.as_row() for r in like_rates(ratings, "variant")],
        "variant_comparison": compare_variants(ratings),
        "daily": daily,
        "coverage": coverage(ratings, events),
        "downvotes": downvotes,
    }


def _image_path(record: dict[str, Any]) -> str:
    output = record.get("output")
    return str(output.get("path") or "") if record.get("tab") == "image" and isinstance(output, dict) else ""


def compare_variants(records: Iterable[dict[str, Any]], tab: str | None = None) -> list[str]:
    """One sentence per variant against the first (alphabetically): difference, p-value, verdict."""
    rows = [r for r in records if r.get("variant") and (tab is None or r.get("tab") == tab)]
    rates = like_rates(rows, "variant")
    if len(rates) < 2:
        return []
    base = rates[0]
    lines = []
    for other in rates[1:]:
        p = two_proportion_p(other.up, other.n, base.up, base.n)
        diff = (other.rate - base.rate) * 100 if other.n and base.n else float("nan")
        verdict = "significant at the 5 % level" if p < 0.05 else "not significant yet"
        lines.append(
            f"{other.group} vs {base.group}: {other.rate:.0%} vs {base.rate:.0%} ({diff:+.0f} points, "
            f"n={other.n}/{base.n}), p={p:.3f} — {verdict}"
        )
    return lines
