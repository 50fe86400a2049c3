"""Support tab: a grounded customer-service chat with sources, handoff and per-message 👍/👎.

The Chatbot shows each answer with its sources underneath; a separate ``history``
state keeps the clean conversation (without the sources block) that the service
uses for follow-ups, and ``ids`` maps each assistant message to its ``output_id``
so the Chatbot's like/dislike can be stored as a rating.
"""

from __future__ import annotations

import html
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
    ui = _render(services, examples)
    _wire(services, ui)
    # The conversation survives a reload (kept in the browser, for this session): what is
    # shown, what the bot is sent next, and which answer each 👍 / 👎 rates.
    saved = gr.BrowserState(None, storage_key="aigc-support-conversation")
    state = gr.State(None)
    for part in (ui["chatbot"], ui["history"], ui["ids"]):
        part.change(
            lambda chat, history, ids: {"chat": chat, "history": history, "ids": ids},
            [ui["chatbot"], ui["history"], ui["ids"]],
            [state],
            api_visibility="private",
            queue=False,
        )
    remembered(state, saved, lambda value: value)

    def restore(value: Any, request: gr.Request) -> tuple[Any, Any, Any]:
        got = recalled(value, request)
        if not isinstance(got, dict) or not got.get("chat"):
            return gr.skip(), gr.skip(), gr.skip()
        return got["chat"], got.get("history") or [], got.get("ids") or {}

    return restore, [ui["chatbot"], ui["history"], ui["ids"]], [saved]


def _render(services: Services, examples: list[str]) -> dict[str, Any]:
    ui: dict[str, Any] = {}
    ui["chatbot"] = gr.Chatbot(
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
        ui["message"] = gr.Textbox(
            show_label=False,
            placeholder=T("support_placeholder"),
            scale=6,
            autofocus=True,
        )
        ui["send"] = gr.Button(T("send"), variant="primary", scale=1, min_width=100, elem_id="support-send")
    ui["reasons"] = gr.CheckboxGroup(
        [(T(f"reason_{r}"), r) for r in REASONS], show_label=False, container=False, elem_id="support-reasons"
    )
    with gr.Row():
        ui["comment"] = gr.Textbox(
            show_label=False,
            placeholder=T("support_reason_placeholder"),
            scale=6,
        )
        ui["add_comment"] = gr.Button(T("add_comment"), scale=1, min_width=100, size="sm")
        ui["clear"] = gr.Button(T("new_conversation"), scale=1, min_width=100, size="sm")
    ui["status"] = gr.Markdown(elem_classes=["rating-status"])
    if examples:
        gr.Examples(examples=[[e] for e in examples], inputs=[ui["message"]], label=T("suggested"))
    with gr.Accordion(T("kb_admin"), open=False, elem_id="support-admin"):
        if not services.settings.admin_token:
            gr.Markdown(T("admin_disabled"))
        else:
            ui["kb_status"] = gr.Markdown()
            with gr.Row():
                ui["token"] = gr.Textbox(label=T("admin_token"), type="password", scale=2)
                ui["kb_mode"] = gr.Radio(
                    [(T("kb_add"), "add"), (T("kb_replace"), "replace")],
                    value="add",
                    label=T("uploaded_files"),
                    scale=3,
                )
            ui["kb_files"] = gr.File(
                label=T("kb_files"),
                file_count="multiple",
                file_types=[".csv", ".jsonl", ".md", ".markdown", ".txt"],
            )
            with gr.Row():
                ui["kb_load"] = gr.Button(T("load_files"), variant="primary")
                ui["kb_reset"] = gr.Button(T("kb_reset"))
                ui["gaps_show"] = gr.Button(T("show_gaps"))
            ui["gaps"] = gr.Dataframe(headers=GAP_COLUMNS, interactive=False, wrap=True, visible=False)
            gr.Markdown(T("handoff_queue_title"))
            with gr.Row():
                ui["tickets_open"] = gr.Button(T("show_open"), size="sm")
                ui["tickets_resolved"] = gr.Button(T("show_resolved"), size="sm")
            ui["tickets"] = gr.Dataframe(
                headers=TICKET_COLUMNS, interactive=False, wrap=True, visible=False, elem_id="handoff-queue"
            )
            with gr.Row():
                ui["ticket_no"] = gr.Textbox(label=T("ticket"), scale=2, elem_id="ticket-number")
                ui["ticket_open"] = gr.Button(T("open_ticket"), scale=1, size="sm")
            ui["transcript"] = gr.Chatbot(
                label=T("handoff_queue"), height=260, visible=False, sanitize_html=True, elem_id="ticket-transcript"
            )
            ui["ticket_question"] = gr.Textbox(label=T("answer_question"), lines=1)
            ui["resolution"] = gr.Textbox(label=T("resolution"), lines=3)
            ui["save_answer"] = gr.Checkbox(label=T("save_as_answer"), value=True)
            ui["resolve"] = gr.Button(T("resolve"), variant="primary")
            ui["ticket_status"] = gr.Markdown()
    ui["history"] = gr.State([])
    ui["ids"] = gr.State({})
    ui["last_rating"] = gr.State(None)
    return ui


def _wire(services: Services, ui: dict[str, Any]) -> None:
    support, feedback = services.support, services.feedback

    def respond(message, chat, history, ids, request: gr.Request):
        chat = list(chat or [])
        # The user's text is shown literally: markup typed into the box is not rendered.
        # The customer's words are shown as typed: no Markdown image, link or HTML of theirs renders.
        shown = {"role": "user", "content": md_escape(str(message or "").strip())}
        if not support.is_ready:
            support.validate(message)
            loading = {"role": "assistant", "content": tr("kb_loading", lang_of(request))}
            yield "", [*chat, shown, loading], history, ids, ""
        result = support.chat(message, history, session_id=session_of(request))
        chat += [shown, {"role": "assistant", "content": render_answer(result, lang_of(request))}]
        ids = {**ids, str(len(chat) - 1): result["output_id"]}
        history = [
            *list(history),
            {"role": "user", "content": message.strip()},
            {"role": "assistant", "content": result["answer"]},
        ]
        yield "", chat, history, ids, ""

    def on_like(ids, comment, reasons, data: gr.LikeData, request: gr.Request):
        index = data.index if isinstance(data.index, int) else data.index[0]
        oid = ids.get(str(index))
        if oid is None:
            return tr("rate_answer_first", lang_of(request)), None, gr.skip(), gr.skip()
        if data.liked in (True, "Like"):
            rating = "up"
        elif data.liked in (False, "Dislike"):
            rating = "down"
        else:
            return "", None, gr.skip(), gr.skip()  # un-liking: the previous record stands; ratings are append-only
        message, record = rate_and_report(
            feedback, oid, rating, comment or "", reasons=reasons, session_id=session_of(request), lang=lang_of(request)
        )
        if record is None:
            return message, None, gr.skip(), gr.skip()
        # The reasons and comment went with this answer's rating, not with the next one.
        return message, (oid, rating, record.id), [], ""

    def add_comment(last, comment, reasons, request: gr.Request):
        lang = lang_of(request)
        if not last:
            return tr("rate_answer_first", lang), comment, gr.skip()
        if not (comment or "").strip():
            return tr("type_comment", lang), comment, gr.skip()
        oid, rating, *earlier = last  # (an older page sends two fields: then a plain re-rating)
        message, record = rate_and_report(
            feedback,
            oid,
            rating,
            comment,
            reasons=reasons,
            session_id=session_of(request),
            lang=lang,
            amends=earlier[0] if earlier else None,  # an update of that rating, not a second one
        )
        if record is None:
            return message, comment, gr.skip()
        return message + ("" if earlier else tr("with_comment", lang)), "", []

    def clear():
        # Both 🗑 (the Chatbot's own clear) and "New conversation" reset what the server is
        # sent next: the clean history, the output ids, the last rating.
        return [], [], {}, None, "", ""

    inputs = [ui["message"], ui["chatbot"], ui["history"], ui["ids"]]
    outputs = [ui["message"], ui["chatbot"], ui["history"], ui["ids"], ui["status"]]
    for trigger in (ui["send"].click, ui["message"].submit):
        trigger(
            user_errors(respond, outputs=len(outputs)),
            inputs,
            outputs,
            api_visibility="private",
            concurrency_id="support",
            concurrency_limit=SUPPORT_CONCURRENCY,
            show_progress_on=[ui["chatbot"]],
        )
    ui["chatbot"].like(
        user_errors(on_like, outputs=4),
        [ui["ids"], ui["comment"], ui["reasons"]],
        [ui["status"], ui["last_rating"], ui["reasons"], ui["comment"]],
        api_visibility="private",
        concurrency_limit=None,
    )
    ui["add_comment"].click(
        user_errors(add_comment, outputs=3),
        [ui["last_rating"], ui["comment"], ui["reasons"]],
        [ui["status"], ui["comment"], ui["reasons"]],
        api_visibility="private",
        concurrency_limit=None,
    )
    for trigger in (ui["clear"].click, ui["chatbot"].clear):
        trigger(
            clear,
            None,
            [ui["chatbot"], ui["history"], ui["ids"], ui["last_rating"], ui["status"], ui["comment"]],
            api_visibility="private",
            queue=False,
        )

    if "token" in ui:
        _wire_admin(services, ui)


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


def _wire_admin(services: Services, ui: dict[str, Any]) -> None:
    support, settings = services.support, services.settings

    def guard(token: str) -> None:
        if not is_admin(settings, token):
            raise AigcError("wrong_token")

    def load(token, files, mode, request: gr.Request):
        guard(token)
        if not files:
            raise AigcError("choose_files")
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        kb = support.install_files(paths, replace=mode == "replace")
        return _kb_summary(services, kb, lang_of(request))

    def reset(token, request: gr.Request):
        guard(token)
        return _kb_summary(services, support.reset_uploads(), lang_of(request))

    def gaps(token, request: gr.Request):
        guard(token)
        lang = lang_of(request)
        rows = gap_rows(support.knowledge_gaps(), lang) or [["", tr("no_gaps", lang), "", "", "", ""]]
        return gr.update(value=table(rows, GAP_COLUMNS, lang), visible=True), _kb_summary(services, support.kb, lang)

    def list_tickets(token, status, request: gr.Request):
        guard(token)
        lang = lang_of(request)
        rows = ticket_rows(support.handoffs.tickets(status), lang) or [["", "", "", "", tr("no_tickets", lang), ""]]
        return gr.update(value=table(rows, TICKET_COLUMNS, lang), visible=True)

    def open_ticket(token, number):
        guard(token)
        ticket = support.handoffs.get(number or "")
        # Every turn of a transcript is shown as text to the operator: the customer's, and the
        # "assistant" ones too, since an API caller can send any history (a forged answer with a
        # remote image). The page's content policy blocks remote loads as well.
        transcript = [{"role": m["role"], "content": md_escape(m["content"])} for m in ticket.messages]
        return gr.update(value=transcript, visible=True), ticket.question, ticket.resolution

    def pick(token, evt: gr.SelectData):
        # A click on any cell of a row opens that row's ticket (its number is the first column).
        row = getattr(evt, "row_value", None) or []
        number = str(row[0]) if row else ""
        return (number, *open_ticket(token, number))

    def resolve(token, number, question, resolution, save, request: gr.Request):
        guard(token)
        lang = lang_of(request)
        ticket = support.resolve_handoff(number or "", resolution, save_as_answer=bool(save), question=question or "")
        message = tr("resolved_ok", lang, ticket=ticket.ticket)
        if ticket.kb_entry:
            message += tr("resolved_saved", lang, entry=ticket.kb_entry)
        return message, _kb_summary(services, support.kb, lang)

    def open_tickets(token, request: gr.Request):
        return list_tickets(token, "open", request)

    def resolved_tickets(token, request: gr.Request):
        return list_tickets(token, "resolved", request)

    ui["tickets_open"].click(
        user_errors(open_tickets, outputs=1), [ui["token"]], [ui["tickets"]], api_visibility="private"
    )
    ui["tickets_resolved"].click(
        user_errors(resolved_tickets, outputs=1), [ui["token"]], [ui["tickets"]], api_visibility="private"
    )
    ui["ticket_open"].click(
        user_errors(open_ticket, outputs=3),
        [ui["token"], ui["ticket_no"]],
        [ui["transcript"], ui["ticket_question"], ui["resolution"]],
        api_visibility="private",
    )
    ui["tickets"].select(
        user_errors(pick, outputs=4),
        [ui["token"]],
        [ui["ticket_no"], ui["transcript"], ui["ticket_question"], ui["resolution"]],
        api_visibility="private",
    )
    ui["resolve"].click(
        user_errors(resolve, outputs=2),
        [ui["token"], ui["ticket_no"], ui["ticket_question"], ui["resolution"], ui["save_answer"]],
        [ui["ticket_status"], ui["kb_status"]],
        api_visibility="private",
    )
    ui["kb_load"].click(
        user_errors(load, outputs=1),
        [ui["token"], ui["kb_files"], ui["kb_mode"]],
        [ui["kb_status"]],
        api_visibility="private",
    )
    ui["kb_reset"].click(user_errors(reset, outputs=1), [ui["token"]], [ui["kb_status"]], api_visibility="private")
    ui["gaps_show"].click(
        user_errors(gaps, outputs=2), [ui["token"]], [ui["gaps"], ui["kb_status"]], api_visibility="private"
    )
