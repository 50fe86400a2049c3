"""The one rating widget every tab uses (the ``/rate`` API is in ``ui/api.py``).

👍 / 👎 stay disabled until there is an output to rate; reason chips and a comment
are optional, before or after the click: a reason ticked or a comment written after 👍
is saved as an update of that rating (a record that ``amends`` it), so the words a tester
adds last are never lost. A rating is only reported as saved after the store's fsync; a
failure says "not saved" and why, and the user's comment stays in the box to retry.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.errors import AigcError
from aigc_demo.feedback.service import REASONS, FeedbackService
from aigc_demo.ui.common import session_of, user_errors
from aigc_demo.ui.i18n import T, lang_of, tr


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
    correction: str = "",
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
            correction=correction or "",
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
    return {
        "record_id": record.id,
        "rating": record.rating,
        "reasons": list(record.reasons),
        "comment": record.comment,
        "correction": record.correction,
    }


def highlight(rating: str | None) -> tuple[Any, Any]:
    """Updates for (👍, 👎): the saved rating's button in the primary colour, the other plain."""
    return (
        gr.update(variant="primary" if rating == "up" else "secondary"),
        gr.update(variant="primary" if rating == "down" else "secondary"),
    )


class RatingWidget:
    """👍 / 👎, reason chips, a comment and the status line under one output.

    A tab renders it under its output, lists ``components`` among the outputs of the events
    that produce a new output, and merges ``cleared(output_id)`` into their updates. With
    ``corrections`` (text answers) a tester can also write a better answer, which training
    prefers to the rated one.
    """

    def __init__(self, feedback: FeedbackService, *, corrections: bool = False) -> None:
        self.feedback = feedback
        self.output_id = gr.State(None)
        with gr.Group(elem_classes=["rating"]):
            with gr.Row(equal_height=True):
                self.up = gr.Button(T("rate_up"), interactive=False, size="sm", min_width=90, elem_classes=["rate-up"])
                self.down = gr.Button(
                    T("rate_down"), interactive=False, size="sm", min_width=90, elem_classes=["rate-down"]
                )
                self.reasons = gr.CheckboxGroup(
                    [(T(f"reason_{r}"), r) for r in REASONS], show_label=False, container=False, scale=4
                )
            self.comment = gr.Textbox(show_label=False, placeholder=T("rate_comment"), lines=1)
            if corrections:
                with gr.Accordion(T("rate_correction"), open=False, elem_classes=["rate-correction"]):
                    self.correction: Any = gr.Textbox(
                        show_label=False, placeholder=T("rate_correction_placeholder"), lines=3
                    )
            else:
                self.correction = gr.State("")
        self.status = gr.Markdown(elem_classes=["rating-status"])
        self.item = gr.State(None)  # which image of a batch is selected (None: the whole output)
        # The rating on screen as stored: {record_id, rating, reasons, comment} or None.
        self.saved = gr.State(None)
        self.click_key = gr.Textbox(visible=False)  # a fresh idempotency key per click, written by CLICK_KEY_JS
        self._setup_events()

    @property
    def components(self) -> list[Any]:
        return [
            self.output_id,
            self.item,
            self.up,
            self.down,
            self.reasons,
            self.comment,
            self.correction,
            self.status,
            self.saved,
        ]

    def cleared(self, output_id: str | None) -> dict[Any, Any]:
        """Updates after a new output (or none: ``output_id`` None disables the thumbs)."""
        enabled = bool(output_id)
        return {
            self.output_id: output_id,
            self.item: None,
            self.up: gr.update(interactive=enabled, variant="secondary"),
            self.down: gr.update(interactive=enabled, variant="secondary"),
            self.reasons: gr.update(value=[]),
            self.comment: gr.update(value=""),
            self.correction: "",
            self.status: gr.update(value=""),
            self.saved: None,
        }

    def highlighted(self, rating: str | None) -> dict[Any, Any]:
        """The saved rating's button in the primary colour, the other plain."""
        up, down = highlight(rating)
        return {self.up: up, self.down: down}

    def _setup_events(self) -> None:
        inputs = [self.output_id, self.item, self.reasons, self.comment, self.correction]
        for button, rating in ((self.up, "up"), (self.down, "down")):
            button.click(
                user_errors(self._rater(rating), outputs=4),
                [*inputs, self.click_key, self.saved],
                [self.status, self.saved, self.up, self.down],
                api_visibility="private",
                concurrency_limit=None,  # never wait behind a generation
                js=CLICK_KEY_JS,
            )
        amend = user_errors(self.amend, outputs=2)
        edits = [self.reasons.input, self.comment.blur, self.comment.submit]
        if isinstance(self.correction, gr.Textbox):
            edits.append(self.correction.blur)
        for event in edits:
            event(
                amend,
                [*inputs, self.saved],
                [self.status, self.saved],
                api_visibility="private",
                concurrency_limit=None,
                trigger_mode="always_last",
            )

    def _rater(self, rating: str) -> Any:
        def clicked(
            oid: str | None,
            index: int | None,
            chosen: list[str],
            text: str,
            better: str,
            key: str,
            saved: dict[str, Any] | None,
            request: gr.Request,
        ) -> dict[Any, Any]:
            return self.save(rating, oid, index, chosen, text, better, key, saved, request)

        return clicked

    def save(
        self,
        rating: str,
        oid: str | None,
        index: int | None,
        chosen: list[str],
        text: str,
        better: str,
        key: str,
        saved: dict[str, Any] | None,
        request: gr.Request,
    ) -> dict[Any, Any]:
        """👍 or 👎 clicked: store it, with the reasons and comment already there."""
        message, record = rate_and_report(
            self.feedback,
            oid,
            rating,
            text,
            reasons=chosen,
            session_id=session_of(request),
            item=index,
            lang=lang_of(request),
            idempotency_key=key,
            amends=saved["record_id"] if saved else None,  # a change of mind replaces the earlier one
            correction=better,
        )
        if record is None:  # the reasons and the comment stay, to retry
            return {self.status: message}
        # The reasons and the comment stay on screen: they are this rating's, and what is
        # added to them from now on updates it. The chosen thumb stays highlighted.
        return {self.status: message, self.saved: _saved_state(record), **self.highlighted(rating)}

    def amend(
        self,
        oid: str | None,
        index: int | None,
        chosen: list[str],
        text: str,
        better: str,
        saved: Any,
        request: gr.Request,
    ) -> dict[Any, Any]:
        """A reason or comment changed after the click: store it as an update of that rating."""
        if not saved or not oid:
            return gr.skip()  # not rated yet: the click will take them along
        same = sorted(chosen or []) == sorted(saved["reasons"]) and (text or "").strip() == saved["comment"]
        if same and (better or "").strip() == saved.get("correction", ""):
            return gr.skip()  # nothing new (a blur without an edit)
        message, record = rate_and_report(
            self.feedback,
            oid,
            saved["rating"],
            text,
            reasons=chosen,
            session_id=session_of(request),
            item=index,
            lang=lang_of(request),
            amends=saved["record_id"],
            correction=better,
        )
        return {self.status: message, **({self.saved: _saved_state(record)} if record is not None else {})}


# Runs in the page before a rating is sent: the inputs come back unchanged except the last,
# a new key for this click (crypto.randomUUID needs https or localhost; else a random one).
CLICK_KEY_JS = """(...args) => {
  const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const inputs = args.slice(0, 7);
  inputs[5] = key;
  return inputs;
}"""
