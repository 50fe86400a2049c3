"""The handoff queue: the tickets the bot passed to people, and their resolution.

Each handoff is one record in the ``handoffs`` stream (``open``: the transcript and a
summary, when the bot passes a conversation on). A resolution is a record in ``handoff_updates`` — appended,
never edited, so both files stay append-only JSONL and the latest update of a ticket
decides its status. A resolution can also become a **new KB answer** in ``DATA_DIR/kb-resolved/resolved.jsonl``,
a knowledge file the support index always loads, so the next customer with that question
gets the operator's answer, cited; resolving the same ticket again replaces its entry.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.feedback.schema import GeneratedOutput, HandoffRecord, HandoffUpdate
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.services.support.analysis import normalize
from aigc_demo.services.support.policy import HUMAN_REQUEST, SMALL_TALK

log = logging.getLogger(__name__)

Status = Literal["open", "resolved"]
RESOLVED_KB_FILE = "resolved.jsonl"
MAX_RESOLUTION_CHARS = 4000


@dataclass
class Ticket:
    ticket: str
    ts: str
    reason: str
    summary: str
    session_id: str
    messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    status: Status = "open"
    resolution: str = ""
    resolved_ts: str = ""
    kb_entry: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        """The customer's last real question: "转人工" or "I want a human" is not what to answer."""
        asked = [m["content"] for m in self.messages if m.get("role") == "user"]
        real = [q for q in asked if not HUMAN_REQUEST.search(normalize(q)) and not SMALL_TALK.search(normalize(q))]
        return (real or asked or [""])[-1]


class HandoffQueue:
    def __init__(self, feedback: FeedbackService, resolved_kb_dir: Path) -> None:
        self.feedback = feedback
        self.resolved_kb_dir = Path(resolved_kb_dir)
        self._lock = threading.Lock()

    def open(self, output: GeneratedOutput, reason: str, ticket: str, lang: str) -> bool:
        """Append a new ticket (the conversation, a summary); False if it could not be stored."""
        record = HandoffRecord(
            ticket=ticket,
            output_id=output.output_id,
            session_id=output.session_id,
            reason=reason,
            lang=lang,
            mood=output.params.get("mood"),
            summary=summarize(output.messages or [], reason, output.sources or [], lang),
            messages=output.messages or [],
            sources=output.sources or [],
        )
        try:
            self.feedback.append("handoffs", record.to_dict())
            return True
        except AigcError as exc:
            log.error("handoff %s not saved: %s", ticket, exc.message)
            return False

    def tickets(self, status: Status | None = None) -> list[Ticket]:
        """Every ticket, newest first, with its latest status."""
        tickets: dict[str, Ticket] = {}
        for record in self.feedback.read("handoffs").records:
            number = record.get("ticket") or record.get("id", "")  # schema 1 records had no ticket number
            tickets[number] = Ticket(
                ticket=number,
                ts=record.get("ts", ""),
                reason=record.get("reason", ""),
                summary=record.get("summary", ""),
                session_id=record.get("session_id", ""),
                messages=list(record.get("messages") or []),
                sources=list(record.get("sources") or []),
            )
        for update in self.feedback.read("handoff_updates").records:
            found = tickets.get(update.get("ticket", ""))
            if found is not None:
                found.status = update.get("status", found.status)
                found.resolution = update.get("resolution", "")
                found.resolved_ts = update.get("ts", "")
                found.kb_entry = update.get("kb_entry", "")
        ordered = sorted(tickets.values(), key=lambda t: t.ts, reverse=True)
        return [t for t in ordered if status is None or t.status == status]

    def get(self, number: str) -> Ticket:
        for ticket in self.tickets():
            if ticket.ticket == number.strip():
                return ticket
        raise InvalidInput("no_ticket", number=repr(number))

    def resolve(self, number: str, resolution: str, *, save_as_answer: bool = False, question: str = "") -> Ticket:
        """Mark a ticket resolved; optionally store the resolution as a new KB answer."""
        resolution = (resolution or "").strip()
        if not resolution:
            raise InvalidInput("resolution_empty")
        if len(resolution) > MAX_RESOLUTION_CHARS:
            raise InvalidInput("resolution_too_long", limit=MAX_RESOLUTION_CHARS)
        with self._lock:
            ticket = self.get(number)
            entry_id = ""
            if save_as_answer:
                entry_id = self._save_entry(ticket, (question or ticket.question).strip(), resolution)
            update = HandoffUpdate(ticket=ticket.ticket, status="resolved", resolution=resolution, kb_entry=entry_id)
            self.feedback.append("handoff_updates", update.to_dict())
        return self.get(number)

    def _save_entry(self, ticket: Ticket, question: str, answer: str) -> str:
        """Write the answer as a KB entry; resolving the ticket again replaces its entry."""
        if not question:
            raise InvalidInput("ticket_no_question")
        self.resolved_kb_dir.mkdir(parents=True, exist_ok=True)
        entry_id = f"resolved-{ticket.ticket}"
        path = self.resolved_kb_dir / RESOLVED_KB_FILE
        kept = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("id") == entry_id:
                        continue
                except ValueError:
                    pass  # a damaged line stays for the loader to report
                kept.append(line)
        kept.append(
            json.dumps(
                {
                    "id": entry_id,
                    "category": "resolved",
                    "question": question,
                    "answer": answer,
                    "ticket": ticket.ticket,
                },
                ensure_ascii=False,
            )
        )
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kept) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # all or nothing: a crash leaves the old file
        return entry_id


SUMMARY_LABELS = {
    "en": ("Reason", "Last question", "Earlier", "Closest entries", ": ", ", "),
    "zh": ("原因", "最后的问题", "之前", "最接近的条目", "：", "、"),
}


def summarize(messages: list[dict[str, Any]], reason: str, sources: list[dict[str, Any]], lang: str = "en") -> str:
    """A few lines an operator reads before the transcript, in the customer's language:
    what was asked, why it came to them (the reason key, as the queue filters it)."""
    reason_label, last, earlier, closest, colon, comma = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    asked = [m["content"].strip().replace("\n", " ")[:160] for m in messages if m["role"] == "user"]
    lines = [f"{reason_label}{colon}{reason}", f"{last}{colon}{asked[-1] if asked else ''}"]
    if len(asked) > 1:
        lines.append(earlier + colon + " | ".join(a[:80] for a in asked[-4:-1]))
    if sources:
        lines.append(closest + colon + comma.join(f"{s['id']} ({s.get('score', 0):.2f})" for s in sources[:3]))
    return "\n".join(lines)
