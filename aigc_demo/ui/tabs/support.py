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
from aigc_demo.services.support.handoffs import Ticket
from aigc_demo.services.support.kb import Problem
from aigc_demo.ui.api import SUPPORT_CONCURRENCY
from aigc_demo.ui.common import OnLoad, is_admin, recalled, session_of, user_errors
from aigc_demo.ui.feedback import rate_and_report
from aigc_demo.ui.i18n import T, lang_of, table, tr
from aigc_demo.ui.tables import GAP_COLUMNS, gap_rows
from aigc_demo.ui.tabs.base import QUICK, Updates

POLL_S = 1.0  # an operator's reply is on the customer's screen within about a second


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


def _signature(ticket: Ticket) -> str:
    """What the customer's page shows of a ticket: a tick sends nothing while it is the same."""
    return f"{len(ticket.thread)}|{ticket.stage}|{ticket.csat}"


def thread_chat(ticket: Ticket, lang: str) -> list[dict[str, str]]:
    """The ticket's part of the customer's chat: their messages (as typed, never rendered as
    markup), the bot's one notice after the first, the operators' replies, how it closed."""
    out: list[dict[str, str]] = []
    for message in ticket.thread:
        if message["role"] == "customer":
            out.append({"role": "user", "content": md_escape(message["content"])})
            if sum(m["role"] == "user" for m in out) == 1:
                out.append({"role": "assistant", "content": tr("support_with_operator", lang)})
        else:
            out.append({"role": "assistant", "content": tr("operator_says", lang, text=message["content"])})
    if ticket.status == "resolved":
        said = ticket.resolution in ticket.replies
        out.append(
            {
                "role": "assistant",
                "content": tr("thread_resolved", lang)
                if said
                else tr("thread_resolved_with", lang, resolution=ticket.resolution),
            }
        )
    elif ticket.status == "returned":
        out.append({"role": "assistant", "content": tr("thread_returned", lang)})
    return out


def thread_history(ticket: Ticket) -> list[dict[str, str]]:
    """The thread as the bot reads it, once the conversation is handed back to it."""
    return [
        {"role": "user" if m["role"] == "customer" else "assistant", "content": m["content"]} for m in ticket.thread
    ]


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
        # The open ticket: {"ticket", "base" (chat messages before its thread), "hbase" (the
        # same in history), "sig" (what was last shown), "closed"}; None without one.
        self.ticket = gr.State(None)
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
            # Always in view, as customers of Chinese service tools ask: a person, one click away.
            self.human_btn = gr.Button(T("talk_to_person"), scale=1, min_width=120, elem_id="support-human")
        self._render_ticket()
        # What a 👍/👎 on the bot's answer says; hidden while a person has the conversation.
        with gr.Column(elem_id="support-rating") as self.rating_box:
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
        self.clear_btn = gr.Button(T("new_conversation"), size="sm")
        self.status = gr.Markdown(elem_classes=["rating-status"])
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[self.message], label=T("suggested"))

    def _render_ticket(self) -> None:
        """A handed-off conversation: its ticket and status line, the 1–5 score on close, and
        the poll that brings operators' replies into the chat."""
        self.banner = gr.Markdown(visible=False, elem_id="support-ticket")
        # The id sits on a Column: Gradio 6 renders a Group's elem_id on two nested divs.
        with gr.Column(visible=False, elem_id="support-csat") as self.csat_form, gr.Group():
            gr.Markdown(T("csat_question"), padding=True)
            self.csat_score = gr.Radio(
                [(T(f"csat_{n}"), n) for n in range(1, 6)], show_label=False, container=False, elem_id="csat-score"
            )
            with gr.Row():
                self.csat_comment = gr.Textbox(show_label=False, placeholder=T("csat_comment_placeholder"), scale=4)
                self.csat_send = gr.Button(T("csat_submit"), variant="primary", scale=1, min_width=100)
        self.timer = gr.Timer(POLL_S, active=False)

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

    @property
    def conversation(self) -> list[Any]:
        """What the page shows and sends: the Chatbot, the clean history, the output ids."""
        return [self.chatbot, self.history, self.ids, self.ticket]

    def on_load(self) -> OnLoad:
        """The conversation survives a reload (kept in the browser, for this session): what is
        shown, what the bot is sent next, and which answer each 👍 / 👎 rates."""
        # Rendered by the page outside the tabs (ui/demo.py): a component in a tab not yet opened
        # is not mounted, so at page load it would not have read the browser's storage.
        saved = gr.BrowserState(None, storage_key="aigc-support-conversation", render=False)

        def save(chat: Any, history: Any, ids: Any, ticket: Any, request: gr.Request) -> dict[str, Any]:
            value = {"chat": chat, "history": history, "ids": ids, "ticket": ticket}
            return {"session": session_of(request), "value": value}  # as `remembered` keeps it

        # Straight into the browser: a State set by another .change handler fires no .change
        # of its own in Gradio 6, so a relay State was never saved (a reload lost the ticket).
        for part in self.conversation:
            part.change(save, self.conversation, [saved], **QUICK)
        return self.restore, [*self.conversation, self.timer], [saved]

    def restore(self, value: Any, request: gr.Request) -> Updates:
        got = recalled(value, request)
        if not isinstance(got, dict) or not got.get("chat"):
            return gr.skip()
        ticket = got.get("ticket") if isinstance(got.get("ticket"), dict) else None
        live = ticket is not None  # the first tick shows its status line (and asks a closed one's score)
        return {
            self.chatbot: got["chat"],
            self.history: got.get("history") or [],
            self.ids: got.get("ids") or {},
            # A ticket still open is polled again, and its status line shown at the first tick.
            self.ticket: {**ticket, "sig": ""} if ticket is not None else None,
            self.timer: gr.Timer(active=live),
        }

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        shown = [self.ticket, self.banner, self.csat_form, self.timer, self.rating_box]
        outputs = [self.message, self.chatbot, self.history, self.ids, self.status, *shown]
        for trigger, fn, inputs in (
            (self.send.click, self.respond, [self.message, self.chatbot, self.history, self.ids, self.ticket]),
            (self.message.submit, self.respond, [self.message, self.chatbot, self.history, self.ids, self.ticket]),
            (self.human_btn.click, self.talk_to_person, [self.chatbot, self.history, self.ids, self.ticket]),
        ):
            trigger(
                user_errors(fn, outputs=len(outputs)),
                inputs,
                outputs,
                api_visibility="private",
                concurrency_id="support",
                concurrency_limit=SUPPORT_CONCURRENCY,
                show_progress_on=[self.chatbot],
            )
        # Operators' replies: read from the thread once a second, sent only when something changed.
        polled = [self.chatbot, self.history, *shown]
        self.timer.tick(
            user_errors(self.poll, outputs=len(polled)),
            [self.ticket, self.chatbot, self.history],
            polled,
            **QUICK,
        )
        gr.on(
            [self.csat_send.click],
            user_errors(self.send_csat, outputs=4),
            [self.ticket, self.csat_score, self.csat_comment],
            [self.banner, self.csat_form, self.ticket, self.status],
            api_visibility="private",
            concurrency_limit=None,
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
                [self.chatbot, self.history, self.ids, self.last_rating, self.status, self.comment, *shown],
                **QUICK,
            )

    def respond(self, message, chat, history, ids, ticket, request: gr.Request) -> Iterator[Updates]:
        support = self.support
        chat = list(chat or [])
        live = self._open_ticket(ticket)
        if live is not None:  # a person has the conversation: the message joins the ticket's thread
            support.to_operator(live.ticket, message, session_id=session_of(request))
            yield {self.message: "", **self._show(ticket, chat, history, lang_of(request))}
            return
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
        updates = {self.message: "", self.chatbot: chat, self.history: history, self.ids: ids, self.status: ""}
        if result.get("ticket"):  # handed off: the thread starts under this answer, polled from now on
            ticket = {"ticket": result["ticket"], "base": len(chat), "hbase": len(history), "sig": ""}
            updates.update(self._show(ticket, chat, history, lang_of(request)))
        yield updates

    def talk_to_person(self, chat, history, ids, ticket, request: gr.Request) -> Iterator[Updates]:
        """The 转人工 button: the customer's request, in their words, as if typed."""
        lang = lang_of(request)
        live = self._open_ticket(ticket)
        if live is not None:
            gr.Info(tr("already_with_operator", lang, ticket=live.ticket))
            yield {}
            return
        yield from self.respond(tr("talk_to_person_message", lang), chat, history, ids, ticket, request)

    # -- the live ticket -------------------------------------------------------------------

    def _ticket_of(self, state: Any) -> Ticket | None:
        """The ticket a page holds, as stored now; None if it has none or it is unknown here
        (say, another data dir): the chat goes on with the bot rather than failing."""
        if not isinstance(state, dict) or not state.get("ticket"):
            return None
        try:
            return self.support.handoffs.customer(state["ticket"])
        except AigcError:
            return None

    def _open_ticket(self, state: Any) -> Ticket | None:
        found = self._ticket_of(state)
        return found if found is not None and found.status == "open" else None

    def _show(self, state: dict[str, Any], chat: list, history: list, lang: str) -> Updates:
        """The chat with the ticket's thread as stored (the same on every tick and replica, so
        a reply and a message sent at once never overwrite each other), its status line, the
        score form once resolved, and the poll while it is open."""
        ticket = self._ticket_of(state)
        if ticket is None:
            return {
                self.ticket: None,
                self.banner: gr.update(visible=False),
                self.timer: gr.Timer(active=False),
                self.rating_box: gr.update(visible=True),
            }
        was_closed = bool(state.get("closed"))
        state = {**state, "sig": _signature(ticket), "closed": ticket.status != "open"}
        updates: Updates = {
            self.ticket: state,
            self.banner: gr.update(value=tr(f"ticket_stage_{ticket.stage}", lang, ticket=ticket.ticket), visible=True),
            self.csat_form: gr.update(visible=ticket.status == "resolved" and ticket.csat is None),
            self.timer: gr.Timer(active=ticket.status == "open"),
            self.rating_box: gr.update(visible=ticket.status != "open"),
        }
        if not was_closed:  # after the close, the chat is the bot's again: its new turns stay
            base, hbase = int(state.get("base", len(chat))), int(state.get("hbase", len(history)))
            updates[self.chatbot] = [*list(chat)[:base], *thread_chat(ticket, lang)]
            updates[self.history] = [*list(history)[:hbase], *thread_history(ticket)]
        return updates

    def poll(self, state, chat, history, request: gr.Request) -> Updates:
        """A tick: nothing is sent unless the thread or the status changed."""
        if not isinstance(state, dict):
            return {self.timer: gr.Timer(active=False)}
        ticket = self._ticket_of(state)
        if ticket is not None and _signature(ticket) == state.get("sig"):
            return {}
        return self._show(state, list(chat or []), list(history or []), lang_of(request))

    def send_csat(self, state, score, comment, request: gr.Request) -> Updates:
        lang = lang_of(request)
        if not isinstance(state, dict) or not state.get("ticket"):
            raise AigcError("no_ticket", number="")
        stored = self.support.handoffs.rate(state["ticket"], score, comment or "", session_id=session_of(request))
        return {
            self.banner: gr.update(value=tr("csat_thanks", lang, score=stored["csat"]), visible=True),
            self.csat_form: gr.update(visible=False),
            self.ticket: None,
            self.status: "",
        }

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
            self.ticket: None,
            self.banner: gr.update(visible=False),
            self.csat_form: gr.update(visible=False),
            self.timer: gr.Timer(active=False),
            self.rating_box: gr.update(visible=True),
        }

    # -- admin events ----------------------------------------------------------------------

    def _setup_admin_events(self) -> None:
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
