"""The Insights tab's operator inbox (admin): the live handoff queue and one ticket's thread.

The queue lists tickets longest-waiting first with their unread counts, filtered by status
and reason; a click on a row opens the whole conversation (the bot's part, then the live
thread), which marks it read — the customer's status line then says an operator is replying.
The operator replies (on the customer's screen at their next poll, about a second later),
hands the conversation back to the bot, or resolves it, optionally saving the answer as a
verified knowledge-base entry. A ``gr.Timer`` refreshes the queue and the open thread every
two seconds and sends nothing while neither changed.

Everything goes through :class:`~aigc_demo.services.support.handoffs.HandoffQueue`, as the
``/handoff_*`` API does, so two replicas on one data dir show one inbox.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.feedback.support_metrics import seconds_between
from aigc_demo.services.support.bot import md_escape
from aigc_demo.services.support.handoffs import STATUSES, Ticket
from aigc_demo.services.support.policy import HANDOFF_REASONS
from aigc_demo.ui.common import is_admin, user_errors
from aigc_demo.ui.i18n import T, has, lang_of, table, tr
from aigc_demo.ui.tabs.base import QUICK, Updates

INBOX_COLUMNS = ["ticket", "waiting", "unread", "reason", "last_message", "stage"]
REASONS = tuple(HANDOFF_REASONS)  # the reason registry: a new reason is a filter choice too
POLL_S = 2.0


def _word(key: str, lang: str, fallback: str) -> str:
    return tr(key, lang) if has(key) else fallback


def duration(seconds: float | None, lang: str) -> str:
    """A short human duration: 45 s, 12 min, 3 h, 2 d."""
    if seconds is None:
        return tr("no_value", lang)
    seconds = max(0.0, seconds)
    for limit, unit, key in ((60, 1, "seconds_short"), (3600, 60, "minutes_short"), (86400, 3600, "hours_short")):
        if seconds < limit:
            return tr(key, lang, n=int(seconds // unit))
    return tr("days_short", lang, n=int(seconds // 86400))


def inbox_rows(tickets: list[Ticket], lang: str) -> list[list[Any]]:
    """One row per ticket: how long the customer has waited (until it closed), unread messages,
    why it was handed off, the last line said, and where it stands."""
    rows = []
    for t in tickets:
        last = t.thread[-1] if t.thread else None
        if last is None:
            said = t.question
        elif last["role"] == "operator":
            said = "🧑‍💼 " + last["content"]
        else:
            said = last["content"]
        rows.append(
            [
                t.ticket,
                duration(seconds_between(t.ts, None if t.status == "open" else t.status_ts or t.resolved_ts), lang),
                t.unread,
                _word(f"handoff_reason_{t.reason}", lang, t.reason),
                said[:80],
                tr(f"stage_{t.stage}", lang),
            ]
        )
    return rows


def operator_thread(ticket: Ticket, lang: str) -> list[dict[str, str]]:
    """The whole conversation as the operator reads it: the bot's part (labelled), then the
    customer and the operators. Everything is shown as text: an API caller can send any history
    (a forged "assistant" turn with a remote image), so nothing in it renders as markup."""
    bot = tr("inbox_bot", lang)
    out = [
        {
            "role": m["role"],
            "content": md_escape(m["content"]) if m["role"] == "user" else f"{bot}: {md_escape(m['content'])}",
        }
        for m in ticket.messages
        if m.get("role") in ("user", "assistant")
    ]
    for m in ticket.thread:
        if m["role"] == "customer":
            out.append({"role": "user", "content": md_escape(m["content"])})
        else:
            out.append({"role": "assistant", "content": f"🧑‍💼 **{tr('operator_label', lang)}**: {m['content']}"})
    return out


def _thread_note(ticket: Ticket, lang: str) -> str:
    stage = tr(f"stage_{ticket.stage}", lang)
    note = f"**{ticket.ticket}** · {stage}"
    if ticket.csat is not None:
        note += " · " + tr("inbox_customer_csat", lang, score=ticket.csat, comment=md_escape(ticket.csat_comment))
    return note


class OperatorPanel:
    """Rendered inside the Insights tab; it reads the tab's admin token."""

    def __init__(self, services: Services, token: Any, show_triggers: list[Any]) -> None:
        self.services = services
        self.token = token
        with gr.Accordion(T("inbox_title"), open=True, elem_id="operator-inbox"):
            gr.Markdown(T("inbox_intro"))
            with gr.Row(equal_height=True):
                self.status_filter = gr.Dropdown(
                    [*((T(f"ticket_status_{s}"), s) for s in STATUSES), (T("status_all"), "all")],
                    value="open",
                    label=T("inbox_status"),
                    scale=1,
                    elem_id="inbox-status",
                )
                self.reason_filter = gr.Dropdown(
                    [(T("reason_all"), "all"), *((T(f"handoff_reason_{r}"), r) for r in REASONS)],
                    value="all",
                    label=T("inbox_reason"),
                    scale=1,
                )
                self.refresh_btn = gr.Button(T("inbox_refresh"), scale=1, elem_id="inbox-refresh")
            self.queue = gr.Dataframe(
                headers=INBOX_COLUMNS,
                label=T("inbox_queue"),
                interactive=False,
                wrap=True,
                elem_id="handoff-queue",
                max_height=300,
                # The 35-character ticket number took half a desktop row and cut the stage off.
                column_widths=["30%", "10%", "8%", "14%", "26%", "12%"],
            )
            with gr.Row(equal_height=True):
                self.number = gr.Textbox(label=T("ticket"), scale=3, elem_id="ticket-number")
                self.open_btn = gr.Button(T("open_ticket"), scale=1, size="sm")
            self.note = gr.Markdown(elem_id="inbox-note")
            self.thread = gr.Chatbot(
                label=T("inbox_thread"), height=320, visible=False, sanitize_html=True, elem_id="ticket-transcript"
            )
            with gr.Row(equal_height=True):
                self.reply = gr.Textbox(
                    label=T("inbox_reply"), placeholder=T("inbox_reply_placeholder"), lines=2, scale=4,
                    elem_id="inbox-reply",
                )  # fmt: skip
                self.send_btn = gr.Button(T("inbox_send"), variant="primary", scale=1, elem_id="inbox-send")
                self.back_btn = gr.Button(T("inbox_hand_back"), scale=1, elem_id="inbox-hand-back")
            self.question = gr.Textbox(label=T("answer_question"), lines=1, elem_id="inbox-question")
            self.resolution = gr.Textbox(label=T("resolution"), lines=3, elem_id="inbox-resolution")
            with gr.Row(equal_height=True):
                self.save = gr.Checkbox(label=T("save_as_answer"), value=True, scale=3)
                self.resolve_btn = gr.Button(T("resolve"), variant="primary", scale=1, elem_id="inbox-resolve")
            self.status = gr.Markdown(elem_id="inbox-status-line")
        self.seen = gr.State({})  # what the page shows: {"queue": ..., "thread": ...} signatures
        self.timer = gr.Timer(POLL_S, active=False)
        self._setup_events(show_triggers)

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self, show_triggers: list[Any]) -> None:
        filters = [self.status_filter, self.reason_filter]
        listed = [self.queue, self.seen, self.timer]
        gr.on(
            [self.refresh_btn.click, self.status_filter.change, self.reason_filter.change],
            user_errors(self.show, outputs=len(listed)),
            [self.token, *filters, self.seen],
            listed,
            **QUICK,
        )
        # The tab's own Refresh (and Enter in the token box) shows the inbox too; a wrong token is
        # reported once, by the tab.
        gr.on(show_triggers, self.show_quietly, [self.token, *filters, self.seen], listed, **QUICK)
        opened = [self.number, self.note, self.thread, self.question, self.resolution, self.status, self.seen]
        self.queue.select(user_errors(self.pick, outputs=len(opened)), [self.token, self.seen], opened, **QUICK)
        gr.on(
            [self.open_btn.click, self.number.submit],
            user_errors(self.open, outputs=len(opened)),
            [self.token, self.number, self.seen],
            opened,
            **QUICK,
        )
        acted = [self.reply, self.note, self.thread, self.status, self.seen]
        gr.on(
            [self.send_btn.click],
            user_errors(self.send, outputs=len(acted)),
            [self.token, self.number, self.reply, self.seen],
            acted,
            api_visibility="private",
            concurrency_limit=None,
        )
        self.back_btn.click(
            user_errors(self.hand_back, outputs=len(acted)),
            [self.token, self.number, self.seen],
            acted,
            api_visibility="private",
            concurrency_limit=None,
        )
        self.resolve_btn.click(
            user_errors(self.resolve, outputs=len(acted)),
            [self.token, self.number, self.question, self.resolution, self.save, self.seen],
            acted,
            api_visibility="private",
            concurrency_limit=None,
        )
        ticked = [self.queue, self.note, self.thread, self.seen, self.timer]
        self.timer.tick(
            user_errors(self.tick, outputs=len(ticked)),
            [self.token, *filters, self.number, self.seen],
            ticked,
            **QUICK,
        )

    def _guard(self, token: str) -> None:
        if not is_admin(self.services.settings, token):
            raise AigcError("wrong_token")

    @property
    def handoffs(self) -> Any:
        return self.services.support.handoffs

    def _queue(self, status: str, reason: str, seen: dict, lang: str) -> Updates:
        tickets = self.handoffs.queue(status or "open", None if reason in (None, "", "all") else reason)
        rows = inbox_rows(tickets, lang)
        key = repr(rows)
        if seen.get("queue") == key:
            return {}
        value = table(rows or [["", "", "", "", tr("inbox_empty", lang), ""]], INBOX_COLUMNS, lang)
        return {self.queue: value, self.seen: {**seen, "queue": key}}

    def show(self, token, status, reason, seen, request: gr.Request) -> Updates:
        self._guard(token)
        seen = {**(seen or {}), "queue": None}  # an explicit refresh always redraws
        shown = self._queue(status, reason, seen, lang_of(request))
        return {self.seen: seen, **shown, self.timer: gr.Timer(active=True)}

    def show_quietly(self, token, status, reason, seen, request: gr.Request) -> Updates:
        if not is_admin(self.services.settings, token):
            return {self.timer: gr.Timer(active=False)}
        return self.show(token, status, reason, seen, request)

    def _thread(self, ticket: Ticket, seen: dict, lang: str, *, force: bool = False) -> Updates:
        key = f"{ticket.ticket}|{len(ticket.thread)}|{ticket.stage}|{ticket.csat}"
        if not force and seen.get("thread") == key:
            return {}
        return {
            self.note: _thread_note(ticket, lang),
            self.thread: gr.update(value=operator_thread(ticket, lang), visible=True),
            self.seen: {**seen, "thread": key},
        }

    def open(self, token, number, seen, request: gr.Request) -> Updates:
        """Open a ticket: read its whole conversation (marking it read) and start its answer
        from the last reply, its question from the customer's last real one."""
        self._guard(token)
        lang = lang_of(request)
        ticket = self.handoffs.get(number or "")
        if ticket.status == "open" and (ticket.unread or not ticket.read_ts):
            ticket = self.handoffs.mark_read(ticket.ticket)
        replies = ticket.replies
        return {
            self.number: ticket.ticket,
            **self._thread(ticket, seen or {}, lang, force=True),
            self.question: ticket.question,
            self.resolution: ticket.resolution or (replies[-1] if replies else ""),
            self.status: "",
        }

    def pick(self, token, seen, evt: gr.SelectData, request: gr.Request) -> Updates:
        # A click on any cell of a row opens that row's ticket (its number is the first column).
        row = getattr(evt, "row_value", None) or []
        number = str(row[0]) if row else ""
        if not number:
            return {}
        return self.open(token, number, seen, request)

    def _number(self, number: Any) -> str:
        if not str(number or "").strip():
            raise AigcError("inbox_pick_first")
        return str(number).strip()

    def send(self, token, number, text, seen, request: gr.Request) -> Updates:
        self._guard(token)
        lang = lang_of(request)
        ticket = self.handoffs.reply(self._number(number), text)  # a reply marks the thread read
        return {self.reply: "", **self._thread(ticket, seen or {}, lang), self.status: tr("inbox_sent", lang)}

    def hand_back(self, token, number, seen, request: gr.Request) -> Updates:
        self._guard(token)
        lang = lang_of(request)
        ticket = self.handoffs.hand_back(self._number(number))
        shown = self._thread(ticket, seen or {}, lang)
        return {**shown, self.status: tr("inbox_handed_back", lang, ticket=ticket.ticket)}

    def resolve(self, token, number, question, resolution, save, seen, request: gr.Request) -> Updates:
        self._guard(token)
        lang = lang_of(request)
        ticket = self.services.support.resolve_handoff(
            self._number(number), resolution or "", save_as_answer=bool(save), question=question or ""
        )
        message = tr("resolved_ok", lang, ticket=ticket.ticket)
        if ticket.kb_entry:
            message += tr("resolved_saved", lang, entry=ticket.kb_entry)
        return {**self._thread(ticket, seen or {}, lang), self.status: message}

    def tick(self, token, status, reason, number, seen, request: gr.Request) -> Updates:
        """Every two seconds: the queue and the open thread, sent only when they changed. New
        customer messages in the open thread are read: the operator has it on screen."""
        if not is_admin(self.services.settings, token):
            return {self.timer: gr.Timer(active=False)}
        lang = lang_of(request)
        seen = dict(seen or {})
        updates = self._queue(status, reason, seen, lang)
        seen = updates.get(self.seen, seen)
        if str(number or "").strip():
            try:
                ticket = self.handoffs.get(str(number))
            except AigcError:
                return updates
            if ticket.status == "open" and ticket.unread:
                ticket = self.handoffs.mark_read(ticket.ticket)
            updates.update(self._thread(ticket, seen, lang))
        return updates
