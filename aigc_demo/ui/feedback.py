"""The one rating widget every tab uses, and the ``/rate`` API.

👍 / 👎 stay disabled until there is an output to rate; reason chips and a comment
are optional, before or after the click: a reason ticked or a comment written after 👍
is saved as an update of that rating (a record that ``amends`` it), so the words a tester
adds last are never lost. A rating is only reported as saved after the store's fsync; a
failure says "not saved" and why, and the user's comment stays in the box to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from aigc_demo.errors import AigcError
from aigc_demo.feedback.service import REASONS, FeedbackService
from aigc_demo.ui.common import session_of, user_errors
from aigc_demo.ui.i18n import T, lang_of, tr


@dataclass
class RatingWidget:
    output_id: gr.State
    up: gr.Button
    down: gr.Button
    reasons: gr.CheckboxGroup
    comment: gr.Textbox
    status: gr.Markdown
    item: gr.State  # which image of a batch is selected (None: the whole output)
    saved: gr.State  # the rating on screen as stored: {record_id, rating, reasons, comment} or None

    def reset(self, output_id: str | None) -> tuple[Any, ...]:
        """Updates for (output_id, item, up, down, reasons, comment, status, saved) after a new output."""
        enabled = bool(output_id)
        return (
            output_id,
            None,
            gr.update(interactive=enabled, variant="secondary"),
            gr.update(interactive=enabled, variant="secondary"),
            gr.update(value=[]),
            gr.update(value=""),
            gr.update(value=""),
            None,
        )

    def unchanged(self) -> tuple[Any, ...]:
        return tuple(gr.skip() for _ in self.components)

    @property
    def components(self) -> list[Any]:
        return [self.output_id, self.item, self.up, self.down, self.reasons, self.comment, self.status, self.saved]


def saved_message(rating: str, lang: str = "en") -> str:
    return tr("rate_saved", lang, icon="👍" if rating == "up" else "👎")


def rate_and_report(
    feedback: FeedbackService,
    output_id: str | None,
    rating: str,
    comment: str = "",
    *,
    reasons: list[str] | None = None,
    session_id: str = "",
    item: int | None = None,
    lang: str = "en",
    idempotency_key: str | None = None,
    amends: str | None = None,
) -> tuple[str, Any]:
    """Store a rating from the UI; return (message for the user, the stored record or None). Never raises."""
    if not output_id:
        return tr("rate_first", lang), None
    try:
        record = feedback.rate(
            output_id,
            rating,
            comment or "",
            reasons=reasons,
            session_id=session_id,
            item=item,
            idempotency_key=idempotency_key or None,
            amends=amends,
        )
    except AigcError as exc:
        reason = exc.localized(lang).removeprefix("rating not saved: ").removeprefix("评分未保存：")
        gr.Warning(tr("rate_not_saved", lang, reason=reason))
        return "⚠️ " + tr("rate_not_saved", lang, reason=reason), None
    message = saved_message(rating, lang) if amends is None else tr("rate_updated", lang, icon=ICONS[rating])
    if record.item is not None:
        message += tr("rate_image_n", lang, n=record.item + 1)
    return message, record


ICONS = {"up": "👍", "down": "👎"}


def _saved_state(record: Any) -> dict[str, Any]:
    return {"record_id": record.id, "rating": record.rating, "reasons": list(record.reasons), "comment": record.comment}


def highlight(rating: str | None) -> tuple[Any, Any]:
    """Updates for (👍, 👎): the saved rating's button in the primary colour, the other plain."""
    return (
        gr.update(variant="primary" if rating == "up" else "secondary"),
        gr.update(variant="primary" if rating == "down" else "secondary"),
    )


def build_rating_widget(feedback: FeedbackService) -> RatingWidget:
    output_id = gr.State(None)
    with gr.Group(elem_classes=["rating"]):
        with gr.Row(equal_height=True):
            up = gr.Button(T("rate_up"), interactive=False, size="sm", min_width=90, elem_classes=["rate-up"])
            down = gr.Button(T("rate_down"), interactive=False, size="sm", min_width=90, elem_classes=["rate-down"])
            reasons = gr.CheckboxGroup(
                [(T(f"reason_{r}"), r) for r in REASONS], show_label=False, container=False, scale=4
            )
        comment = gr.Textbox(show_label=False, placeholder=T("rate_comment"), lines=1)
    status = gr.Markdown(elem_classes=["rating-status"])
    item = gr.State(None)
    click_key = gr.Textbox(visible=False)  # a fresh idempotency key per click, written by CLICK_KEY_JS
    widget = RatingWidget(output_id, up, down, reasons, comment, status, item, gr.State(None))

    def make_handler(rating: str):
        def handler(
            oid: str | None,
            index: int | None,
            chosen: list[str],
            text: str,
            key: str,
            saved: dict[str, Any] | None,
            request: gr.Request,
        ):
            message, record = rate_and_report(
                feedback,
                oid,
                rating,
                text,
                reasons=chosen,
                session_id=session_of(request),
                item=index,
                lang=lang_of(request),
                idempotency_key=key,
                amends=saved["record_id"] if saved else None,  # a change of mind replaces the earlier one
            )
            if record is None:  # the reasons and the comment stay, to retry
                return message, gr.skip(), gr.skip(), gr.skip()
            # The reasons and the comment stay on screen: they are this rating's, and what is
            # added to them from now on updates it. The chosen thumb stays highlighted.
            return message, _saved_state(record), *highlight(rating)

        return user_errors(handler, outputs=4)

    def amend(oid: str | None, index: int | None, chosen: list[str], text: str, saved: Any, request: gr.Request):
        """A reason or comment changed after the click: store it as an update of that rating."""
        if not saved or not oid:
            return gr.skip(), gr.skip()  # not rated yet: the click will take them along
        if sorted(chosen or []) == sorted(saved["reasons"]) and (text or "").strip() == saved["comment"]:
            return gr.skip(), gr.skip()  # nothing new (a blur without an edit)
        message, record = rate_and_report(
            feedback,
            oid,
            saved["rating"],
            text,
            reasons=chosen,
            session_id=session_of(request),
            item=index,
            lang=lang_of(request),
            amends=saved["record_id"],
        )
        return message, (_saved_state(record) if record is not None else gr.skip())

    saved = widget.saved
    for button, rating in ((up, "up"), (down, "down")):
        button.click(
            make_handler(rating),
            [output_id, item, reasons, comment, click_key, saved],
            [status, saved, up, down],
            api_visibility="private",
            concurrency_limit=None,  # never wait behind a generation
            js=CLICK_KEY_JS,
        )
    amend_handler = user_errors(amend, outputs=2)
    for event in (reasons.input, comment.blur, comment.submit):
        event(
            amend_handler,
            [output_id, item, reasons, comment, saved],
            [status, saved],
            api_visibility="private",
            concurrency_limit=None,
            trigger_mode="always_last",
        )
    return widget


# Runs in the page before a rating is sent: the inputs come back unchanged except the last,
# a new key for this click (crypto.randomUUID needs https or localhost; else a random one).
CLICK_KEY_JS = """(...args) => {
  const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const inputs = args.slice(0, 6);
  inputs[4] = key;
  return inputs;
}"""
