"""Support tab: a grounded customer-service chat with sources, handoff and per-message 👍/👎.

The Chatbot shows each answer with its sources underneath; a separate ``history``
state keeps the clean conversation (without the sources block) that the service
uses for follow-ups, and ``ids`` maps each assistant message to its ``output_id``
so the Chatbot's like/dislike can be stored as a rating.

A tab class (``ui/tabs/base.py`` says how they are built). The ``/support_chat`` API
(``ui/api.py``) calls the same service.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.feedback.service import REASONS
from aigc_demo.services.support.bot import md_escape
from aigc_demo.services.support.kb import Problem
from aigc_demo.ui.api import SUPPORT_CONCURRENCY
from aigc_demo.ui.common import OnLoad, is_admin, recalled, remembered, session_of, user_errors
from aigc_demo.ui.feedback import rate_and_report
from aigc_demo.ui.i18n import T, lang_of, table, tr
from aigc_demo.ui.tables import GAP_COLUMNS, TICKET_COLUMNS, gap_rows, ticket_rows
from aigc_demo.ui.tabs.base import QUICK, Updates


def render_answer(result: dict[str, Any], lang: str = "en") -> str:
    """Answer + numbered sources (Markdown; the Chatbot sanitises HTML), labels in ``lang``."""
    text = result["answer"]
    if result["handoff"] or result.get("refused"):
        return f"🧑‍💼 {text}" if result["handoff"] else text
    lines = []
    for src in result["sources"]:
        title = _md_escape(src["title"])
        link = f"[{title}]({src['url']})" if src.get("url", "").startswith(("https://", "http://")) else title
        badge = f"✅ **{tr('verified_answer', lang)}** · " if src.get("verified") else ""
        lines.append(f"{src['rank']}. {badge}{link} — <small>{_md_escape(src['snippet'][:120])}…</small>")
    if lines:
        text += f"\n\n**{tr('sources', lang)}**\n" + "\n".join(lines)
    return text


def _md_escape(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;").replace(">", "&gt;")


def build(services: Services, examples: list[str]) -> OnLoad:
    return SupportTab(services, examples).on_load()


class SupportTab:
    """The Support tab's components and handlers (build it inside its ``gr.Tab``)."""

    def __init__(self, services: Services, examples: list[str]) -> None:
        self.services = services
        self.support = services.support
        self.feedback = services.feedback
        # The knowledge-base admin exists only with an admin token configured.
        self.admin_enabled = bool(services.settings.admin_token)
        self._render_conversation(examples)
        with gr.Accordion(T("kb_admin"), open=False, elem_id="support-admin"):
            if not self.admin_enabled:
                gr.Markdown(T("admin_disabled"))
            else:
                self._render_admin()
        self.history = gr.State([])
        self.ids = gr.State({})
        self.last_rating = gr.State(None)
        self._setup_events()
        if self.admin_enabled:
            self._setup_admin_events()

    # -- layout ----------------------------------------------------------------------------

    def _render_conversation(self, examples: list[str]) -> None:
        self.chatbot = gr.Chatbot(
            value=[],
            # The greeting is the empty chat's placeholder, in the page language: not a message,
            # so it has no 👍/👎 of its own (it is not an answer to rate).
            placeholder=T("support_greeting"),
            label=T("assistant"),
            show_label=False,  # a floating badge would cover the first lines when scrolled
            height=460,
            feedback_options=("Like", "Dislike"),
            sanitize_html=True,
            elem_id="support-chat",
            buttons=["copy"],
        )
        with gr.Row():
            self.message = gr.Textbox(
                show_label=False,
                placeholder=T("support_placeholder"),
                scale=6,
                autofocus=True,
            )
            self.send = gr.Button(T("send"), variant="primary", scale=1, min_width=100, elem_id="support-send")
        self.reasons = gr.CheckboxGroup(
            [(T(f"reason_{r}"), r) for r in REASONS], show_label=False, container=False, elem_id="support-reasons"
        )
        with gr.Row():
            self.comment = gr.Textbox(
                show_label=False,
                placeholder=T("support_reason_placeholder"),
                scale=6,
            )
            self.add_comment_btn = gr.Button(T("add_comment"), scale=1, min_width=100, size="sm")
            self.clear_btn = gr.Button(T("new_conversation"), scale=1, min_width=100, size="sm")
        self.status = gr.Markdown(elem_classes=["rating-status"])
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[self.message], label=T("suggested"))

    def _render_admin(self) -> None:
        self.kb_status = gr.Markdown()
        with gr.Row():
            self.token = gr.Textbox(label=T("admin_token"), type="password", scale=2)
            self.kb_mode = gr.Radio(
                [(T("kb_add"), "add"), (T("kb_replace"), "replace")],
                value="add",
                label=T("uploaded_files"),
                scale=3,
            )
        self.kb_files = gr.File(
            label=T("kb_files"),
            file_count="multiple",
            file_types=[".csv", ".jsonl", ".md", ".markdown", ".txt"],
        )
        with gr.Row():
            self.kb_load = gr.Button(T("load_files"), variant="primary")
            self.kb_reset = gr.Button(T("kb_reset"))
            self.gaps_show = gr.Button(T("show_gaps"))
        self.gaps = gr.Dataframe(headers=GAP_COLUMNS, interactive=False, wrap=True, visible=False)
        self._render_handoff_queue()

    def _render_handoff_queue(self) -> None:
        gr.Markdown(T("handoff_queue_title"))
        with gr.Row():
            self.tickets_open = gr.Button(T("show_open"), size="sm")
            self.tickets_resolved = gr.Button(T("show_resolved"), size="sm")
        self.tickets = gr.Dataframe(
            headers=TICKET_COLUMNS, interactive=False, wrap=True, visible=False, elem_id="handoff-queue"
        )
        with gr.Row():
            self.ticket_no = gr.Textbox(label=T("ticket"), scale=2, elem_id="ticket-number")
            self.ticket_open = gr.Button(T("open_ticket"), scale=1, size="sm")
        self.transcript = gr.Chatbot(
            label=T("handoff_queue"), height=260, visible=False, sanitize_html=True, elem_id="ticket-transcript"
        )
        self.ticket_question = gr.Textbox(label=T("answer_question"), lines=1)
        self.resolution = gr.Textbox(label=T("resolution"), lines=3)
        self.save_answer = gr.Checkbox(label=T("save_as_answer"), value=True)
        self.resolve_btn = gr.Button(T("resolve"), variant="primary")
        self.ticket_status = gr.Markdown()

    @property
    def conversation(self) -> list[Any]:
        """What the page shows and sends: the Chatbot, the clean history, the output ids."""
        return [self.chatbot, self.history, self.ids]

    def on_load(self) -> OnLoad:
        """The conversation survives a reload (kept in the browser, for this session): what is
        shown, what the bot is sent next, and which answer each 👍 / 👎 rates."""
        saved = gr.BrowserState(None, storage_key="aigc-support-conversation")
        state = gr.State(None)
        for part in self.conversation:
            part.change(
                lambda chat, history, ids: {state: {"chat": chat, "history": history, "ids": ids}},
                self.conversation,
                [state],
                **QUICK,
            )
        remembered(state, saved, lambda value: value)
        return self.restore, self.conversation, [saved]

    def restore(self, value: Any, request: gr.Request) -> Updates:
        got = recalled(value, request)
        if not isinstance(got, dict) or not got.get("chat"):
            return gr.skip()
        return {self.chatbot: got["chat"], self.history: got.get("history") or [], self.ids: got.get("ids") or {}}

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        outputs = [self.message, self.chatbot, self.history, self.ids, self.status]
        for trigger in (self.send.click, self.message.submit):
            trigger(
                user_errors(self.respond, outputs=len(outputs)),
                [self.message, self.chatbot, self.history, self.ids],
                outputs,
                api_visibility="private",
                concurrency_id="support",
                concurrency_limit=SUPPORT_CONCURRENCY,
                show_progress_on=[self.chatbot],
            )
        self.chatbot.like(
            user_errors(self.on_like, outputs=4),
            [self.ids, self.comment, self.reasons],
            [self.status, self.last_rating, self.reasons, self.comment],
            api_visibility="private",
            concurrency_limit=None,
        )
        self.add_comment_btn.click(
            user_errors(self.add_comment, outputs=3),
            [self.last_rating, self.comment, self.reasons],
            [self.status, self.comment, self.reasons],
            api_visibility="private",
            concurrency_limit=None,
        )
        for trigger in (self.clear_btn.click, self.chatbot.clear):
            trigger(
                self.clear,
                None,
                [self.chatbot, self.history, self.ids, self.last_rating, self.status, self.comment],
                **QUICK,
            )

    def respond(self, message, chat, history, ids, request: gr.Request) -> Iterator[Updates]:
        support = self.support
        chat = list(chat or [])
        # The user's text is shown literally: markup typed into the box is not rendered.
        # The customer's words are shown as typed: no Markdown image, link or HTML of theirs renders.
        shown = {"role": "user", "content": md_escape(str(message or "").strip())}
        if not support.is_ready:
            support.validate(message)
            loading = {"role": "assistant", "content": tr("kb_loading", lang_of(request))}
            yield {
                self.message: "",
                self.chatbot: [*chat, shown, loading],
                self.history: history,
                self.ids: ids,
                self.status: "",
            }
        result = support.chat(message, history, session_id=session_of(request))
        chat += [shown, {"role": "assistant", "content": render_answer(result, lang_of(request))}]
        ids = {**ids, str(len(chat) - 1): result["output_id"]}
        history = [
            *list(history),
            {"role": "user", "content": message.strip()},
            {"role": "assistant", "content": result["answer"]},
        ]
        yield {self.message: "", self.chatbot: chat, self.history: history, self.ids: ids, self.status: ""}

    def on_like(self, ids, comment, reasons, data: gr.LikeData, request: gr.Request) -> Updates:
        index = data.index if isinstance(data.index, int) else data.index[0]
        oid = ids.get(str(index))
        if oid is None:
            return {self.status: tr("rate_answer_first", lang_of(request)), self.last_rating: None}
        if data.liked in (True, "Like"):
            rating = "up"
        elif data.liked in (False, "Dislike"):
            rating = "down"
        else:
            # un-liking: the previous record stands; ratings are append-only
            return {self.status: "", self.last_rating: None}
        message, record = rate_and_report(
            self.feedback,
            oid,
            rating,
            comment or "",
            reasons=reasons,
            session_id=session_of(request),
            lang=lang_of(request),
        )
        if record is None:
            return {self.status: message, self.last_rating: None}
        # The reasons and comment went with this answer's rating, not with the next one.
        return {self.status: message, self.last_rating: (oid, rating, record.id), self.reasons: [], self.comment: ""}

    def add_comment(self, last, comment, reasons, request: gr.Request) -> Updates:
        lang = lang_of(request)
        if not last:
            return {self.status: tr("rate_answer_first", lang), self.comment: comment}
        if not (comment or "").strip():
            return {self.status: tr("type_comment", lang), self.comment: comment}
        oid, rating, *earlier = last  # (an older page sends two fields: then a plain re-rating)
        message, record = rate_and_report(
            self.feedback,
            oid,
            rating,
            comment,
            reasons=reasons,
            session_id=session_of(request),
            lang=lang,
            amends=earlier[0] if earlier else None,  # an update of that rating, not a second one
        )
        if record is None:
            return {self.status: message, self.comment: comment}
        return {
            self.status: message + ("" if earlier else tr("with_comment", lang)),
            self.comment: "",
            self.reasons: [],
        }

    def clear(self) -> Updates:
        # Both 🗑 (the Chatbot's own clear) and "New conversation" reset what the server is
        # sent next: the clean history, the output ids, the last rating.
        return {
            self.chatbot: [],
            self.history: [],
            self.ids: {},
            self.last_rating: None,
            self.status: "",
            self.comment: "",
        }

    # -- admin events ----------------------------------------------------------------------

    def _setup_admin_events(self) -> None:
        self.tickets_open.click(
            user_errors(self.open_tickets, outputs=1), [self.token], [self.tickets], api_visibility="private"
        )
        self.tickets_resolved.click(
            user_errors(self.resolved_tickets, outputs=1), [self.token], [self.tickets], api_visibility="private"
        )
        self.ticket_open.click(
            user_errors(self.open_ticket, outputs=3),
            [self.token, self.ticket_no],
            [self.transcript, self.ticket_question, self.resolution],
            api_visibility="private",
        )
        self.tickets.select(
            user_errors(self.pick, outputs=4),
            [self.token],
            [self.ticket_no, self.transcript, self.ticket_question, self.resolution],
            api_visibility="private",
        )
        self.resolve_btn.click(
            user_errors(self.resolve, outputs=2),
            [self.token, self.ticket_no, self.ticket_question, self.resolution, self.save_answer],
            [self.ticket_status, self.kb_status],
            api_visibility="private",
        )
        self.kb_load.click(
            user_errors(self.load, outputs=1),
            [self.token, self.kb_files, self.kb_mode],
            [self.kb_status],
            api_visibility="private",
        )
        self.kb_reset.click(
            user_errors(self.reset, outputs=1), [self.token], [self.kb_status], api_visibility="private"
        )
        self.gaps_show.click(
            user_errors(self.show_gaps, outputs=2), [self.token], [self.gaps, self.kb_status], api_visibility="private"
        )

    def guard(self, token: str) -> None:
        if not is_admin(self.services.settings, token):
            raise AigcError("wrong_token")

    def summary(self, kb: Any, lang: str) -> str:
        return _kb_summary(self.services, kb, lang)

    def load(self, token, files, mode, request: gr.Request) -> Updates:
        self.guard(token)
        if not files:
            raise AigcError("choose_files")
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        kb = self.support.install_files(paths, replace=mode == "replace")
        return {self.kb_status: self.summary(kb, lang_of(request))}

    def reset(self, token, request: gr.Request) -> Updates:
        self.guard(token)
        return {self.kb_status: self.summary(self.support.reset_uploads(), lang_of(request))}

    def show_gaps(self, token, request: gr.Request) -> Updates:
        self.guard(token)
        lang = lang_of(request)
        rows = gap_rows(self.support.knowledge_gaps(), lang) or [["", tr("no_gaps", lang), "", "", "", ""]]
        return {
            self.gaps: gr.update(value=table(rows, GAP_COLUMNS, lang), visible=True),
            self.kb_status: self.summary(self.support.kb, lang),
        }

    def list_tickets(self, token, status, request: gr.Request) -> Updates:
        self.guard(token)
        lang = lang_of(request)
        tickets = self.support.handoffs.tickets(status)
        rows = ticket_rows(tickets, lang) or [["", "", "", "", tr("no_tickets", lang), ""]]
        return {self.tickets: gr.update(value=table(rows, TICKET_COLUMNS, lang), visible=True)}

    def open_tickets(self, token, request: gr.Request) -> Updates:
        return self.list_tickets(token, "open", request)

    def resolved_tickets(self, token, request: gr.Request) -> Updates:
        return self.list_tickets(token, "resolved", request)

    def open_ticket(self, token, number) -> Updates:
        self.guard(token)
        ticket = self.support.handoffs.get(number or "")
        # Every turn of a transcript is shown as text to the operator: the customer's, and the
        # "assistant" ones too, since an API caller can send any history (a forged answer with a
        # remote image). The page's content policy blocks remote loads as well.
        transcript = [{"role": m["role"], "content": md_escape(m["content"])} for m in ticket.messages]
        return {
            self.transcript: gr.update(value=transcript, visible=True),
            self.ticket_question: ticket.question,
            self.resolution: ticket.resolution,
        }

    def pick(self, token, evt: gr.SelectData) -> Updates:
        # A click on any cell of a row opens that row's ticket (its number is the first column).
        row = getattr(evt, "row_value", None) or []
        number = str(row[0]) if row else ""
        return {self.ticket_no: number, **self.open_ticket(token, number)}

    def resolve(self, token, number, question, resolution, save, request: gr.Request) -> Updates:
        self.guard(token)
        lang = lang_of(request)
        ticket = self.support.resolve_handoff(
            number or "", resolution, save_as_answer=bool(save), question=question or ""
        )
        message = tr("resolved_ok", lang, ticket=ticket.ticket)
        if ticket.kb_entry:
            message += tr("resolved_saved", lang, entry=ticket.kb_entry)
        return {self.ticket_status: message, self.kb_status: self.summary(self.support.kb, lang)}


def _in_language(problem: str, lang: str) -> str:
    return problem.in_language(lang) if isinstance(problem, Problem) else problem


def _kb_summary(services: Services, kb: Any, lang: str = "en") -> str:
    files = sorted({e.source for e in kb.entries})
    learning = services.support.learning
    verified = learning.verified_count if learning is not None else 0
    comma = "、" if lang == "zh" else ", "
    text = tr("kb_summary", lang, n=len(kb.entries), files=comma.join(files), verified=verified)
    if kb.problems:
        shown = "\n".join(f"- {html.escape(_in_language(p, lang), quote=False)}" for p in kb.problems[:20])
        text += "\n\n" + tr("kb_skipped", lang) + "\n" + shown
    return text
