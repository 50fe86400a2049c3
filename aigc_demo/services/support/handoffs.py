"""Handoffs: the tickets the bot passed to people, their live threads, resolution and CSAT.

Four append-only streams in ``DATA_DIR/feedback`` hold everything, written through
:meth:`FeedbackService.append` (lock, fsync, CRC per line, as ratings are):

* ``handoffs`` — a ticket opened: the transcript and a summary, when the bot passes a
  conversation on;
* ``handoff_messages`` — the live thread: the customer's messages after the handoff, the
  operators' replies, and "read" marks (an operator opened the thread);
* ``handoff_updates`` — a status change: ``resolved`` (optionally saved as a KB answer),
  ``returned`` (handed back to the bot) or ``open`` again; the latest one decides;
* ``csat`` — the customer's 1–5 score of a closed ticket, one per ticket.

:class:`HandoffQueue` keeps a view of all four, refreshed from the files by a
:class:`~aigc_demo.feedback.store.Tail` per stream before each read (a ``stat`` per file when
nothing is new), so replicas on one data dir see one queue and a restart loses nothing that
was acknowledged. Status changes and the CSAT take the stream's cross-process key lock, so
two operators on two replicas cannot both resolve a ticket into two KB entries.

A ticket number is also the customer's key to the thread (``/support_updates``): 16 random
characters from a 32-letter alphabet (80 bits) after the date, so nobody reads another
customer's thread by guessing. Numbers from before the live threads (4 random characters)
are still found by operators, never by customers.

A resolution can become a **new KB answer** in ``DATA_DIR/kb-resolved/resolved.jsonl``,
a knowledge file the support index always loads, so the next customer with that question
gets the operator's answer, cited; resolving the same ticket again replaces its entry.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.feedback.schema import CsatRecord, GeneratedOutput, HandoffMessage, HandoffRecord, HandoffUpdate
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.services.support.analysis import normalize
from aigc_demo.services.support.policy import HUMAN_REQUEST, SMALL_TALK
from aigc_demo.services.validation import clean_text

log = logging.getLogger(__name__)

Status = Literal["open", "resolved", "returned"]
STATUSES = ("open", "resolved", "returned")
RESOLVED_KB_FILE = "resolved.jsonl"
MAX_RESOLUTION_CHARS = 4000
MAX_CSAT_COMMENT_CHARS = 1000
STREAMS = ("handoffs", "handoff_messages", "handoff_updates", "csat")
# The customer-facing form of a ticket number: the date, then 16 secret characters.
CUSTOMER_TICKET = re.compile(r"T-\d{6}(?:-[A-HJ-NP-Z2-9]{4}){4}")


@dataclass
class Ticket:
    ticket: str
    ts: str
    reason: str
    summary: str
    session_id: str
    messages: list[dict[str, str]]  # the conversation with the bot, up to the handoff
    sources: list[dict[str, Any]]
    lang: str = ""
    output_id: str = ""
    status: Status = "open"
    resolution: str = ""
    resolved_ts: str = ""  # when it was last closed (resolved or returned)
    status_ts: str = ""
    kb_entry: str = ""
    resolved_question: str = ""
    thread: list[dict[str, str]] = field(default_factory=list)  # customer and operator lines, oldest first
    read_ts: str = ""  # the last time an operator opened or answered the thread
    csat: int | None = None
    csat_comment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        """The customer's last real question: "转人工" or "I want a human" is not what to answer."""
        if self.resolved_question:
            return self.resolved_question
        asked = [m["content"] for m in self.messages if m.get("role") == "user"]
        asked += [m["content"] for m in self.thread if m["role"] == "customer"]
        real = [q for q in asked if not HUMAN_REQUEST.search(normalize(q)) and not SMALL_TALK.search(normalize(q))]
        return (real or asked or [""])[-1]

    @property
    def unread(self) -> int:
        """Customer messages no operator has seen yet."""
        return sum(1 for m in self.thread if m["role"] == "customer" and m["ts"] > self.read_ts)

    @property
    def replies(self) -> list[str]:
        return [m["content"] for m in self.thread if m["role"] == "operator"]

    @property
    def first_reply_ts(self) -> str:
        return next((m["ts"] for m in self.thread if m["role"] == "operator"), "")

    @property
    def last_activity(self) -> str:
        return max([self.ts, *(m["ts"] for m in self.thread)])

    @property
    def stage(self) -> str:
        """What the customer is told: waiting, operator (someone has it), resolved, returned."""
        if self.status != "open":
            return self.status
        return "operator" if self.read_ts else "waiting"

    def public(self) -> dict[str, Any]:
        """What ``/support_updates`` returns: the API's two statuses, the thread, the finer stage."""
        return {
            "ticket": self.ticket,
            "status": "open" if self.status == "open" else "resolved",
            "stage": self.stage,
            "messages": [{"role": m["role"], "content": m["content"], "ts": m["ts"]} for m in self.thread],
            "csat": self.csat,
        }


class HandoffQueue:
    def __init__(self, feedback: FeedbackService, resolved_kb_dir: Path) -> None:
        self.feedback = feedback
        self.resolved_kb_dir = Path(resolved_kb_dir)
        self._lock = threading.Lock()  # the view: one refresh at a time
        self._tickets: dict[str, Ticket] = {}
        self._tails = {name: feedback.tail(name) for name in STREAMS}

    # -- the view ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Take in what any process appended since the last look (ticket records first, so a
        reply read in the same pass finds its ticket)."""
        with self._lock:
            for name in STREAMS:
                apply = getattr(self, f"_apply_{name}")
                for *_, record in self._tails[name].each():
                    apply(record)

    def _apply_handoffs(self, record: dict[str, Any]) -> None:
        number = record.get("ticket") or record.get("id", "")  # schema 1 records had no ticket number
        self._tickets[number] = Ticket(
            ticket=number,
            ts=record.get("ts", ""),
            reason=record.get("reason", ""),
            summary=record.get("summary", ""),
            session_id=record.get("session_id", ""),
            messages=list(record.get("messages") or []),
            sources=list(record.get("sources") or []),
            lang=str(record.get("lang") or ""),
            output_id=str(record.get("output_id") or ""),
        )

    def _apply_handoff_messages(self, record: dict[str, Any]) -> None:
        found = self._tickets.get(record["ticket"])
        if found is None:
            return
        ts = str(record.get("ts", ""))
        if record["role"] == "read" or record["role"] == "operator":
            found.read_ts = max(found.read_ts, ts)
        if record["role"] in ("customer", "operator"):
            found.thread.append({"role": record["role"], "content": record["content"], "ts": ts, "id": record["id"]})
            # Two replicas' files are read one after the other: order the thread by time (a
            # stable sort, so lines of one millisecond keep their order in the file).
            found.thread.sort(key=lambda m: m["ts"])

    def _apply_handoff_updates(self, update: dict[str, Any]) -> None:
        found = self._tickets.get(update["ticket"])
        ts = str(update.get("ts", ""))
        if found is None or update["status"] not in STATUSES or ts < found.status_ts:
            return  # the latest update wins, whichever replica's file it is in
        found.status, found.status_ts = update["status"], ts
        found.resolution = update.get("resolution", "")
        found.resolved_ts = ts if found.status != "open" else ""
        found.kb_entry = update.get("kb_entry", "")
        found.resolved_question = update.get("question", "")

    def _apply_csat(self, record: dict[str, Any]) -> None:
        found = self._tickets.get(record["ticket"])
        if found is not None and found.csat is None:  # the first score stands
            found.csat, found.csat_comment = int(record["csat"]), str(record.get("comment") or "")

    def tickets(self, status: Status | None = None) -> list[Ticket]:
        """Every ticket, newest first, with its latest status."""
        self.refresh()
        with self._lock:
            ordered = sorted(map(_copy, self._tickets.values()), key=lambda t: t.ts, reverse=True)
        return [t for t in ordered if status is None or t.status == status]

    def queue(self, status: str | None = "open", reason: str | None = None) -> list[Ticket]:
        """The operators' inbox: oldest first (who has waited longest comes first)."""
        kept = [t for t in self.tickets(None if status in (None, "", "all") else status)]  # type: ignore[arg-type]
        return sorted((t for t in kept if not reason or t.reason == reason), key=lambda t: t.ts)

    def get(self, number: str) -> Ticket:
        """A ticket, for an operator: its number, or a unique start of it (as read on the phone)."""
        number = (number or "").strip().upper() if isinstance(number, str) else ""
        self.refresh()
        with self._lock:
            found = self._tickets.get(number)
            if found is None and len(number) >= 10:
                matches = [t for n, t in self._tickets.items() if n.startswith(number)]
                found = matches[0] if len(matches) == 1 else None
            found = _copy(found) if found is not None else None
        if found is None:
            raise InvalidInput("no_ticket", number=number[:40])
        return found

    def customer(self, number: object) -> Ticket:
        """A ticket for its customer: the whole secret number, nothing less. An unknown number
        and an old guessable one get the same answer, so neither tells anything."""
        text = number.strip() if isinstance(number, str) else ""
        if not CUSTOMER_TICKET.fullmatch(text):
            raise InvalidInput("no_ticket", number=text[:40])
        self.refresh()
        with self._lock:
            found = self._tickets.get(text)
            found = _copy(found) if found is not None else None
        if found is None:
            raise InvalidInput("no_ticket", number=text[:40])
        return found

    # -- writing -------------------------------------------------------------------------------

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

    def post(self, number: str, text: object, *, session_id: str = "", max_chars: int = 4000) -> Ticket:
        """The customer's message joins the thread of their open ticket."""
        ticket = self.customer(number)
        message = clean_text(text, name="message", max_chars=max_chars)
        if ticket.status != "open":
            raise InvalidInput("ticket_closed", ticket=ticket.ticket)
        self._append(ticket.ticket, "customer", message, session_id=session_id)
        return self.customer(number)

    def reply(self, number: str, text: object) -> Ticket:
        """An operator's reply, shown in the customer's chat (the operator's words are the
        company's: stored as written, not PII-scrubbed as customers' words are)."""
        message = clean_text(text, name="reply", max_chars=MAX_RESOLUTION_CHARS)
        ticket = self.get(number)
        if ticket.status != "open":
            raise InvalidInput("ticket_closed", ticket=ticket.ticket)
        self._append(ticket.ticket, "operator", message, scrub=False)
        return self.get(ticket.ticket)

    def mark_read(self, number: str) -> Ticket:
        """An operator opened the thread: its customer messages so far are read."""
        ticket = self.get(number)
        if ticket.status == "open" and (ticket.unread or not ticket.read_ts):
            self._append(ticket.ticket, "read", "")
            return self.get(ticket.ticket)
        return ticket

    def _append(self, number: str, role: str, content: str, *, session_id: str = "", scrub: bool = True) -> None:
        record = HandoffMessage(ticket=number, role=role, content=content, session_id=session_id)  # type: ignore[arg-type]
        self.feedback.append("handoff_messages", record.to_dict(), scrub=scrub)

    def hand_back(self, number: str) -> Ticket:
        """Give the conversation back to the bot: the customer's next message is answered by it."""
        return self._close(number, "returned")

    def reopen(self, number: str) -> Ticket:
        return self._close(number, "open")

    def resolve(self, number: str, resolution: str = "", *, save_as_answer: bool = False, question: str = "") -> Ticket:
        """Mark a ticket resolved; optionally store the resolution as a new KB answer. An
        empty resolution is the operator's last reply in the thread."""
        ticket = self.get(number)
        resolution = (resolution or "").strip() or (ticket.replies[-1] if ticket.replies else "")
        if not resolution:
            raise InvalidInput("resolution_empty")
        if len(resolution) > MAX_RESOLUTION_CHARS:
            raise InvalidInput("resolution_too_long", limit=MAX_RESOLUTION_CHARS)
        return self._close(number, "resolved", resolution, save_as_answer=save_as_answer, question=question)

    def _close(
        self, number: str, status: Status, resolution: str = "", *, save_as_answer: bool = False, question: str = ""
    ) -> Ticket:
        # The stream's key lock (every process on this data dir): one status change at a time,
        # so two operators resolving one ticket at once leave one KB entry, the later answer.
        with self._lock_updates():
            ticket = self.get(number)
            # Handed back to the bot from an open ticket only: a resolved one keeps its answer and
            # its customer's score form. Resolving again corrects the answer (and its KB entry).
            if status == "returned" and ticket.status != "open":
                raise InvalidInput("ticket_closed", ticket=ticket.ticket)
            question = (question or ticket.question).strip()
            entry_id = self._save_entry(ticket, question, resolution) if save_as_answer else ""
            update = HandoffUpdate(
                ticket=ticket.ticket, status=status, resolution=resolution, kb_entry=entry_id, question=question
            )
            self.feedback.append("handoff_updates", update.to_dict())
        return self.get(ticket.ticket)

    def _lock_updates(self) -> Any:
        return self.feedback.keyed_write("handoff_updates")

    def rate(self, number: str, score: object, comment: object = "", *, session_id: str = "") -> dict[str, Any]:
        """The customer's CSAT for a closed ticket: 1–5 and an optional comment. One per
        ticket: a second call returns the first record, as a retried vote does."""
        if isinstance(score, str) and score.strip().isdigit():
            score = int(score.strip())
        if isinstance(score, float) and score.is_integer():
            score = int(score)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidInput("bad_csat")
        note = clean_text(comment, name="comment", max_chars=MAX_CSAT_COMMENT_CHARS, required=False)
        ticket = self.customer(number)
        if ticket.status != "resolved":  # open, or handed back to the bot: no person's service to score
            raise InvalidInput("csat_too_early")
        with self.feedback.keyed_write("csat"):
            ticket = self.customer(number)
            if ticket.csat is not None:
                return {"ticket": ticket.ticket, "csat": ticket.csat, "comment": ticket.csat_comment, "first": False}
            record = CsatRecord(ticket=ticket.ticket, csat=score, comment=note, session_id=session_id, lang=ticket.lang)
            stored = self.feedback.append("csat", record.to_dict())
        self.refresh()
        return {**stored, "first": True}

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


def _copy(ticket: Ticket) -> Ticket:
    """A snapshot for a reader: the view's own lists change as the files grow."""
    return dataclasses.replace(ticket, thread=list(ticket.thread), messages=list(ticket.messages))


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
