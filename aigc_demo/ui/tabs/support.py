"""Support tab: a grounded customer-service chat with sources, handoff and per-message 👍/👎.

The Chatbot shows each answer with its sources underneath; a separate ``history``
state keeps the clean conversation (without the sources block) that the service
uses for follow-ups, and ``ids`` maps each assistant message to its ``output_id``
so the Chatbot's like/dislike can be stored as a rating.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from aigc_demo.services.support.bot import GREETING
from aigc_demo.ui.common import Services, session_of, user_errors
from aigc_demo.ui.feedback import rate_and_report


def greeting_messages() -> list[dict[str, str]]:
    return [{"role": "assistant", "content": f"{GREETING['en']}\n\n{GREETING['zh']}"}]


def render_answer(result: dict[str, Any]) -> str:
    """Answer + numbered sources (Markdown; the Chatbot sanitises HTML)."""
    text = result["answer"]
    if result["handoff"]:
        text = f"🧑‍💼 {text}"
        return text
    lines = []
    for src in result["sources"]:
        title = _md_escape(src["title"])
        link = f"[{title}]({src['url']})" if src.get("url", "").startswith(("https://", "http://")) else title
        lines.append(f"{src['rank']}. {link} — <small>{_md_escape(src['snippet'][:120])}…</small>")
    if lines:
        text += "\n\n**Sources / 来源**\n" + "\n".join(lines)
    return text


def _md_escape(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;").replace(">", "&gt;")


def build_support_tab(services: Services, examples: list[str]) -> None:
    ui = _render(services, examples)
    _wire(services, ui)


def _render(services: Services, examples: list[str]) -> dict[str, Any]:
    ui: dict[str, Any] = {}
    ui["chatbot"] = gr.Chatbot(
        value=greeting_messages(),
        label="Lumen Store assistant / 流明商城客服",
        height=460,
        feedback_options=("Like", "Dislike"),
        sanitize_html=True,
        elem_id="support-chat",
        buttons=["copy"],
    )
    with gr.Row():
        ui["message"] = gr.Textbox(
            show_label=False,
            placeholder="Ask about shipping, returns, payment… / 请输入您的问题",
            max_length=services.settings.max_prompt_chars,
            scale=6,
            autofocus=True,
        )
        ui["send"] = gr.Button("Send / 发送", variant="primary", scale=1, min_width=100, elem_id="support-send")
    with gr.Row():
        ui["comment"] = gr.Textbox(show_label=False, placeholder="Optional comment on your last 👍/👎", scale=6, max_length=2000)
        ui["add_comment"] = gr.Button("Add comment", scale=1, min_width=100, size="sm")
        ui["clear"] = gr.Button("🗑 New conversation", scale=1, min_width=100, size="sm")
    ui["status"] = gr.Markdown(elem_classes=["rating-status"])
    if examples:
        gr.Examples(examples=[[e] for e in examples], inputs=[ui["message"]], label="Suggested questions / 常见问题")
    ui["history"] = gr.State([])
    ui["ids"] = gr.State({})
    ui["last_rating"] = gr.State(None)
    return ui


def _wire(services: Services, ui: dict[str, Any]) -> None:
    support, feedback = services.support, services.feedback

    def respond(message, chat, history, ids, request: gr.Request):
        chat = list(chat or [])
        # The user's text is shown literally: markup typed into the box is not rendered.
        shown = {"role": "user", "content": html.escape(str(message or "").strip(), quote=False)}
        if not support.is_ready:
            support.validate(message)
            loading = {"role": "assistant", "content": "⏳ Loading the knowledge base (first question only)…"}
            yield "", chat + [shown, loading], history, ids, ""
        result = support.chat(message, history, session_id=session_of(request))
        chat += [shown, {"role": "assistant", "content": render_answer(result)}]
        ids = {**ids, str(len(chat) - 1): result["output_id"]}
        history = list(history) + [
            {"role": "user", "content": message.strip()},
            {"role": "assistant", "content": result["answer"]},
        ]
        yield "", chat, history, ids, ""

    def on_like(ids, comment, data: gr.LikeData, request: gr.Request):
        index = data.index if isinstance(data.index, int) else data.index[0]
        oid = ids.get(str(index))
        if oid is None:
            return "That is the greeting — rate one of my answers instead.", None
        if data.liked in (True, "Like"):
            rating = "up"
        elif data.liked in (False, "Dislike"):
            rating = "down"
        else:
            return "", None  # un-liking: the previous record stands; ratings are append-only
        message, saved = rate_and_report(feedback, oid, rating, comment or "", session_id=session_of(request))
        return message, (oid, rating) if saved else None

    def add_comment(last, comment, request: gr.Request):
        if not last:
            return "Rate an answer with 👍 or 👎 first, then add your comment.", comment
        if not (comment or "").strip():
            return "Type a comment first.", comment
        oid, rating = last
        message, saved = rate_and_report(feedback, oid, rating, comment, session_id=session_of(request))
        return (message + " (with your comment)", "") if saved else (message, comment)

    def clear():
        return greeting_messages(), [], {}, None, "", ""

    inputs = [ui["message"], ui["chatbot"], ui["history"], ui["ids"]]
    outputs = [ui["message"], ui["chatbot"], ui["history"], ui["ids"], ui["status"]]
    for trigger in (ui["send"].click, ui["message"].submit):
        trigger(user_errors(respond, outputs=len(outputs)), inputs, outputs, api_visibility="private", concurrency_id="support")
    ui["chatbot"].like(
        user_errors(on_like, outputs=2), [ui["ids"], ui["comment"]], [ui["status"], ui["last_rating"]],
        api_visibility="private", concurrency_limit=None,
    )
    ui["add_comment"].click(
        user_errors(add_comment, outputs=2), [ui["last_rating"], ui["comment"]], [ui["status"], ui["comment"]],
        api_visibility="private", concurrency_limit=None,
    )
    ui["clear"].click(
        clear, None, [ui["chatbot"], ui["history"], ui["ids"], ui["last_rating"], ui["status"], ui["comment"]],
        api_visibility="private", queue=False,
    )

    def support_chat(message: str, history: list | None = None, request: gr.Request = None) -> dict:
        """Ask the support bot; returns output_id, answer, sources [{id, title, score, ...}] and handoff."""
        return support.chat(message, history or [], session_id=session_of(request))

    gr.api(user_errors(support_chat), api_name="support_chat", concurrency_id="support")
