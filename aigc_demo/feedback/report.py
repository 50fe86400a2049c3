"""Per-session report for user-testing sessions (Markdown and HTML).

A facilitator sends links with ``?session=CODE``; afterwards ``python -m aigc_demo
report --session CODE`` (or the Insights tab's filter) shows what those participants did:
interactions and ratings per tab, like-rate with its interval, comments, the worst
outputs, latencies, support handoffs and Arena votes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from aigc_demo.feedback.arena import by_kind
from aigc_demo.feedback.insights import generations, latest_ratings, like_rates, wilson
from aigc_demo.feedback.schema import shown_output
from aigc_demo.feedback.support_metrics import service_times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


# What participants typed is shown as text: Markdown punctuation is backslash-escaped, so a
# comment like ``![x](http://host/t.png)`` or ``[win](https://evil.example)`` stays words in
# the .md file and in any viewer (no image fetched, no live link).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!<>|~])")


def _cell(text: Any, limit: int = 120) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(text or "").replace("\n", " ")[:limit])


# The report's own words, per language (a facilitator in a Chinese session reads it in Chinese).
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Session report: {code}",
        "empty": "No generations recorded for this session code.",
        "summary": "From {start} to {end} UTC: **{gen}** generations, **{rated}** rated outputs, like-rate {rate}, "
        "**{handoffs}** support handoffs.",
        "rate": "**{rate:.0%}** (95 % CI {lo:.0%}–{hi:.0%})",
        "per_tab": "Per tab",
        "tab_head": "| tab | generations | rated | 👍 | 👎 | like-rate | latency p50 / p95 (s) |",
        "comments": "Comments",
        "worst": "Worst outputs (👎)",
        "worst_head": "| tab | prompt | output | reasons | comment |",
        "handoffs": "Support handoffs",
        "service": "Human service: **{tickets}** tickets ({open} still open); first operator reply median {reply} "
        "(p90 {reply_p90}, n={reply_n}); resolved in median {resolved} (p90 {resolved_p90}, n={resolved_n}); "
        "CSAT {csat}.",
        "csat": "**{mean:.2f}**/5 (95 % interval {lo:.2f}–{hi:.2f}, n={n})",
        "seconds": "{value:.0f} s",
        "minutes": "{value:.1f} min",
        "hours": "{value:.1f} h",
        "arena": "Arena votes",
        "board_head": "| contestant | rating | 95 % interval | battles | wins | ties |",
        "votes_head": "| kind | prompt | A | B | vote | comment |",
        "none": "None.",
        "tab_text": "text",
        "tab_image": "image",
        "tab_support": "support",
        "tab_arena": "arena",
        "choice_a": "A",
        "choice_b": "B",
        "choice_tie": "tie",
        "choice_both_bad": "both bad",
        "kind_text": "text",
        "kind_image": "image",
    },
    "zh": {
        "title": "会话报告：{code}",
        "empty": "这个会话代码没有生成记录。",
        "summary": "{start} 至 {end}（UTC）：**{gen}** 次生成，**{rated}** 条已评价，好评率 {rate}，"
        "**{handoffs}** 次转人工。",
        "rate": "**{rate:.0%}**（95% 置信区间 {lo:.0%}–{hi:.0%}）",
        "per_tab": "各标签页",
        "tab_head": "| 标签页 | 生成 | 已评价 | 👍 | 👎 | 好评率 | 延迟 p50 / p95（秒） |",
        "comments": "评论",
        "worst": "最差的输出（👎）",
        "worst_head": "| 标签页 | 提示词 | 输出 | 理由 | 评论 |",
        "handoffs": "转人工",
        "service": "人工客服：共 **{tickets}** 个工单（{open} 个仍在处理）；客服首次回复用时中位数 {reply}"
        "（p90 {reply_p90}，n={reply_n}）；解决用时中位数 {resolved}（p90 {resolved_p90}，n={resolved_n}）；"
        "满意度 {csat}。",
        "csat": "**{mean:.2f}**/5（95% 区间 {lo:.2f}–{hi:.2f}，n={n}）",
        "seconds": "{value:.0f} 秒",
        "minutes": "{value:.1f} 分钟",
        "hours": "{value:.1f} 小时",
        "arena": "竞技场投票",
        "board_head": "| 选手 | 评分 | 95% 区间 | 对战 | 胜 | 平 |",
        "votes_head": "| 类型 | 提示词 | A | B | 投票 | 评论 |",
        "none": "无。",
        "tab_text": "文本",
        "tab_image": "图像",
        "tab_support": "客服",
        "tab_arena": "竞技场",
        "choice_a": "A",
        "choice_b": "B",
        "choice_tie": "平局",
        "choice_both_bad": "都不好",
        "kind_text": "文本",
        "kind_image": "图像",
    },
}


def session_report(
    code: str,
    ratings: list[dict[str, Any]],
    events: list[dict[str, Any]],
    handoffs: list[dict[str, Any]],
    votes: list[dict[str, Any]] | None = None,
    *,
    lang: str = "en",
    reason_label: Callable[[str], str] | None = None,
    messages: list[dict[str, Any]] | None = None,
    updates: list[dict[str, Any]] | None = None,
    csat: list[dict[str, Any]] | None = None,
) -> str:
    """The report in ``lang``; ``reason_label`` names a handoff reason code ("low_confidence")
    for people (the UI's catalogue has the words); without it the code is shown.

    ``messages``, ``updates`` and ``csat`` are the ``handoff_messages``, ``handoff_updates``
    and ``csat`` records: given any of them (a missing one counts as empty), a session with
    handoffs gets a human-service line (first operator reply, resolution time, CSAT); none
    given, no such line."""
    words = WORDS.get(lang, WORDS["en"])

    def w(key: str, **fields: Any) -> str:
        return words[key].format(**fields) if fields else words[key]

    def named(prefix: str, value: Any) -> str:
        return words.get(f"{prefix}_{value}", str(value))

    reason_of = reason_label or str
    votes = [v for v in votes or [] if v.get("session_id") == code and v.get("type") == "arena_vote"]
    ratings = [r for r in ratings if r.get("session_id") == code]
    events = generations(e for e in events if e.get("session_id") == code)
    handoffs = [h for h in handoffs if h.get("session_id") == code]
    latest = latest_ratings(ratings)
    lines = ["# " + w("title", code=_cell(code, 80)), ""]
    if not events and not ratings and not votes:
        return "\n".join([*lines, w("empty")]) + "\n"
    # The session's span: its generations, else its ratings, else its Arena votes (a session
    # that only voted has no generation of a rated tab).
    times = sorted(str(r.get("ts", "")) for r in events or ratings or votes)
    up = sum(r.get("rating") == "up" for r in latest)
    lo, hi = wilson(up, len(latest))
    lines += [
        w(
            "summary",
            start=times[0][:16].replace("T", " "),
            end=times[-1][:16].replace("T", " "),
            gen=len(events),
            rated=len(latest),
            rate=w("rate", rate=up / len(latest), lo=lo, hi=hi) if latest else "–",
            handoffs=len(handoffs),
        ),
        "",
        "## " + w("per_tab"),
        "",
        w("tab_head"),
        "|---|---|---|---|---|---|---|",
    ]
    rates = {r.group: r for r in like_rates(ratings, "tab")}
    for tab in sorted({str(e.get("tab")) for e in events} | set(rates)):
        lat = [float(e["latency_ms"]) / 1000 for e in events if e.get("tab") == tab and e.get("latency_ms") is not None]
        rate = rates.get(tab)
        n_events = sum(e.get("tab") == tab for e in events)
        lines.append(
            f"| {named('tab', tab)} | {n_events} | {rate.n if rate else 0} | {rate.up if rate else 0} | "
            f"{rate.down if rate else 0} | "
            f"{f'{rate.rate:.0%}' if rate and rate.n else '–'} | "
            + (f"{_pct(lat, 0.5):.2f} / {_pct(lat, 0.95):.2f}" if lat else "–")
            + " |"
        )
    comments = [r for r in latest if r.get("comment")]
    lines += ["", "## " + w("comments"), ""]
    lines += [
        f"- {'👍' if r.get('rating') == 'up' else '👎'} ({named('tab', r.get('tab'))}) {_cell(r.get('comment'), 300)}"
        for r in comments
    ] or [w("none")]
    worst = [r for r in latest if r.get("rating") == "down"]
    lines += ["", "## " + w("worst"), ""]
    if worst:
        lines += [w("worst_head"), "|---|---|---|---|---|"]
        for r in worst[:20]:
            out = shown_output(r.get("output"))
            lines.append(
                f"| {named('tab', r.get('tab'))} | {_cell(r.get('prompt'))} | {_cell(out)} | "
                f"{_cell(', '.join(r.get('reasons') or []))} | {_cell(r.get('comment'))} |"
            )
    else:
        lines.append(w("none"))
    lines += ["", "## " + w("handoffs"), ""]
    for h in handoffs:
        question = next(
            (m.get("content", "") for m in reversed(h.get("messages") or []) if m.get("role") == "user"), ""
        )
        lines.append(f"- {_cell(reason_of(str(h.get('reason'))), 80)}: {_cell(question, 200)}")
    lines += _service_lines(code, handoffs, words, messages, updates, csat) if handoffs else [w("none")]
    lines += ["", "## " + w("arena"), ""]
    if votes:
        lines += [w("board_head"), "|---|---|---|---|---|---|"]
        for st in [st for table in by_kind(votes).values() for st in table]:
            lines.append(
                f"| {_cell(st.model)} | {st.rating:.0f} | {st.ci_low:.0f}–{st.ci_high:.0f} | "
                f"{st.battles} | {st.wins} | {st.ties} |"
            )
        lines += ["", w("votes_head"), "|---|---|---|---|---|---|"]
        for v in votes[-20:]:
            lines.append(
                f"| {named('kind', v.get('kind'))} | {_cell(v.get('prompt'))} | {_cell(v['a'].get('contestant'))} | "
                f"{_cell(v['b'].get('contestant'))} | {named('choice', v.get('choice'))} | {_cell(v.get('comment'))} |"
            )
    else:
        lines.append(w("none"))
    return "\n".join(lines) + "\n"


def _duration(seconds: float | None, words: dict[str, str]) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return words["seconds"].format(value=seconds)
    if seconds < 90 * 60:
        return words["minutes"].format(value=seconds / 60)
    return words["hours"].format(value=seconds / 3600)


def _service_lines(
    code: str,
    handoffs: list[dict[str, Any]],
    words: dict[str, str],
    messages: list[dict[str, Any]] | None,
    updates: list[dict[str, Any]] | None,
    csat: list[dict[str, Any]] | None,
) -> list[str]:
    """The session's human service in one sentence (``support_metrics.service_times``), after
    a blank line; nothing when none of the ticket streams was given."""
    if messages is None and updates is None and csat is None:
        return []
    stats = service_times(handoffs, messages or [], updates or [], csat or [], session=code)
    reply, resolved, score = stats["first_reply"], stats["resolution"], stats["csat"]
    return [
        "",
        words["service"].format(
            tickets=stats["tickets"],
            open=stats["open"],
            reply=_duration(reply["median_s"], words),
            reply_p90=_duration(reply["p90_s"], words),
            reply_n=reply["n"],
            resolved=_duration(resolved["median_s"], words),
            resolved_p90=_duration(resolved["p90_s"], words),
            resolved_n=resolved["n"],
            csat=words["csat"].format(mean=score["mean"], lo=score["ci_low"], hi=score["ci_high"], n=score["n"])
            if score["n"]
            else "–",
        ),
    ]


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
