"""Per-session report for user-testing sessions (Markdown and HTML).

A facilitator sends links with ``?session=CODE``; afterwards ``python -m aigc_demo
report --session CODE`` (or the Insights tab's filter) shows what those participants did:
interactions and ratings per tab, like-rate with its interval, comments, the worst
outputs, latencies, support handoffs and Arena votes.
"""

from __future__ import annotations

import html
import re
from typing import Any

from aigc_demo.feedback.arena import by_kind
from aigc_demo.feedback.insights import latest_ratings, like_rates, wilson


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


# What participants typed is shown as text: Markdown punctuation is backslash-escaped, so a
# comment like ``![x](http://host/t.png)`` or ``[win](https://evil.example)`` stays words in
# the .md file and in any viewer (no image fetched, no live link).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!<>|~])")


def _cell(text: Any, limit: int = 120) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(text or "").replace("\n", " ")[:limit])


def session_report(
    code: str,
    ratings: list[dict[str, Any]],
    events: list[dict[str, Any]],
    handoffs: list[dict[str, Any]],
    votes: list[dict[str, Any]] | None = None,
) -> str:
    votes = [v for v in votes or [] if v.get("session_id") == code and v.get("type") == "arena_vote"]
    ratings = [r for r in ratings if r.get("session_id") == code]
    events = [e for e in events if e.get("session_id") == code and e.get("type", "generation") == "generation"]
    handoffs = [h for h in handoffs if h.get("session_id") == code]
    latest = latest_ratings(ratings)
    lines = [f"# Session report: {_cell(code, 80)}", ""]
    if not events and not ratings and not votes:
        return "\n".join([*lines, "No interactions recorded for this session code."]) + "\n"
    times = sorted(str(e.get("ts", "")) for e in events) or sorted(str(r.get("ts", "")) for r in ratings)
    up = sum(r.get("rating") == "up" for r in latest)
    lo, hi = wilson(up, len(latest))
    lines += [
        f"From {times[0][:16].replace('T', ' ')} to {times[-1][:16].replace('T', ' ')} UTC: "
        f"**{len(events)}** interactions, **{len(latest)}** rated outputs, like-rate "
        + (f"**{up / len(latest):.0%}** (95 % CI {lo:.0%}–{hi:.0%})" if latest else "–")
        + f", **{len(handoffs)}** support handoffs.",
        "",
        "## Per tab",
        "",
        "| tab | interactions | rated | 👍 | 👎 | like-rate | latency p50 / p95 (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    rates = {r.group: r for r in like_rates(ratings, "tab")}
    for tab in sorted({str(e.get("tab")) for e in events} | set(rates)):
        lat = [float(e["latency_ms"]) / 1000 for e in events if e.get("tab") == tab and e.get("latency_ms") is not None]
        rate = rates.get(tab)
        n_events = sum(e.get("tab") == tab for e in events)
        lines.append(
            f"| {tab} | {n_events} | {rate.n if rate else 0} | {rate.up if rate else 0} | {rate.down if rate else 0} | "
            f"{f'{rate.rate:.0%}' if rate and rate.n else '–'} | "
            + (f"{_pct(lat, 0.5):.2f} / {_pct(lat, 0.95):.2f}" if lat else "–")
            + " |"
        )
    comments = [r for r in latest if r.get("comment")]
    lines += ["", "## Comments", ""]
    lines += [
        f"- {'👍' if r.get('rating') == 'up' else '👎'} ({r.get('tab')}) {_cell(r.get('comment'), 300)}"
        for r in comments
    ] or ["None."]
    worst = [r for r in latest if r.get("rating") == "down"]
    lines += ["", "## Worst outputs (👎)", ""]
    if worst:
        lines += ["| tab | prompt | output | reasons | comment |", "|---|---|---|---|---|"]
        for r in worst[:20]:
            out = (r.get("output") or {}).get("text") or (r.get("output") or {}).get("path") or ""
            lines.append(
                f"| {r.get('tab')} | {_cell(r.get('prompt'))} | {_cell(out)} | "
                f"{_cell(', '.join(r.get('reasons') or []))} | {_cell(r.get('comment'))} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Support handoffs", ""]
    for h in handoffs:
        question = next(
            (m.get("content", "") for m in reversed(h.get("messages") or []) if m.get("role") == "user"), ""
        )
        lines.append(f"- {h.get('reason')}: {_cell(question, 200)}")  # reason: one of the bot's own codes
    if not handoffs:
        lines.append("None.")
    lines += ["", "## Arena votes", ""]
    if votes:
        lines += ["| contestant | rating | 95 % interval | battles | wins | ties |", "|---|---|---|---|---|---|"]
        for st in [st for table in by_kind(votes).values() for st in table]:
            lines.append(
                f"| {_cell(st.model)} | {st.rating:.0f} | {st.ci_low:.0f}–{st.ci_high:.0f} | "
                f"{st.battles} | {st.wins} | {st.ties} |"
            )
        lines += ["", "| kind | prompt | A | B | vote | comment |", "|---|---|---|---|---|---|"]
        for v in votes[-20:]:
            lines.append(
                f"| {v.get('kind')} | {_cell(v.get('prompt'))} | {_cell(v['a'].get('contestant'))} | "
                f"{_cell(v['b'].get('contestant'))} | {v.get('choice')} | {_cell(v.get('comment'))} |"
            )
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def to_html(markdown_text: str, title: str) -> str:
    from markdown_it import MarkdownIt

    # Raw HTML stays escaped, and no link or image syntax is rendered at all; the page's CSP
    # forbids loading anything, so even a slip could not fetch from another host.
    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable(["image", "link", "autolink"])
    body = md.render(markdown_text)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head>"
        f"<body>{body}</body></html>\n"
    )
