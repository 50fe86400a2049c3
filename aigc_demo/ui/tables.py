"""Rows for the admin tables that more than one tab shows (Support's admin panel, Insights).

Each ``*_rows`` function returns plain rows in its ``*_COLUMNS`` order, with the words a
reader sees (gap kinds, ticket status and reason) in the page language; ``i18n.table``
adds the translated headers.
"""

from __future__ import annotations

from typing import Any

from aigc_demo.ui.i18n import has, tr

GAP_COLUMNS = ["when", "kind", "question", "answer", "comment", "sources"]
TICKET_COLUMNS = ["ticket", "when", "status", "reason", "question", "summary"]
GAP_KINDS = {"downvoted": "gap_downvoted", "handoff: not in the knowledge base": "gap_handoff"}


def _word(prefix: str, value: str, lang: str) -> str:
    """``value`` in ``lang`` when ``<prefix>_<value>`` is a known string, else as stored."""
    key = f"{prefix}_{value}"
    return tr(key, lang) if has(key) else value


def ticket_rows(tickets: list[Any], lang: str = "en") -> list[list[Any]]:
    return [
        [
            t.ticket,
            t.ts[:16].replace("T", " "),
            _word("ticket_status", t.status, lang),
            _word("handoff_reason", t.reason, lang),
            t.question[:120],
            _summary(t.summary, t.reason, lang)[:300],
        ]
        for t in tickets
    ]


def _summary(summary: str, reason: str, lang: str) -> str:
    """The stored summary, its first line's reason key ("原因：not_covered") in ``lang``'s words:
    the record keeps the key, as the queue filters on it."""
    first, sep, rest = summary.partition("\n")
    if reason and first.endswith(reason):
        first = first[: -len(reason)] + _word("handoff_reason", reason, lang)
    return first + sep + rest


def gap_rows(gaps: list[dict[str, Any]], lang: str = "en") -> list[list[Any]]:
    """Knowledge gaps (support/learning.py) as table rows, in GAP_COLUMNS order, kinds in ``lang``."""
    return [
        [
            g["ts"][:16].replace("T", " "),
            tr(GAP_KINDS[g["kind"]], lang) if g["kind"] in GAP_KINDS else g["kind"],
            g["question"],
            g["answer"][:200],
            g["comment"],
            ", ".join(map(str, g["sources"])),
        ]
        for g in gaps
    ]
