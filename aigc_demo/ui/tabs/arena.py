"""Arena tab: two anonymous answers to one prompt, side by side; vote; then see who was who.

Blind by construction: the page shows "A" and "B" until the vote is stored, the positions
are random per battle, and both sides get the same prompt and seed. A tab class
(``ui/tabs/base.py`` says how they are built); the ``/arena_text``, ``/arena_image`` and
``/arena_vote`` APIs (``ui/api.py``) call the same service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.services.arena import REASONS
from aigc_demo.ui.common import scroll_to, session_of, user_errors
from aigc_demo.ui.i18n import T, lang_of, tr
from aigc_demo.ui.streaming import PACER
from aigc_demo.ui.tabs.base import QUICK, Updates

VOTES = (("a", "arena_vote_a"), ("tie", "arena_vote_tie"), ("both_bad", "arena_vote_bad"), ("b", "arena_vote_b"))


def build(services: Services, examples: list[str]) -> None:
    ArenaTab(services)


class ArenaTab:
    """The Arena tab's components and handlers (build it inside its ``gr.Tab``)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.arena = services.arena
        self._render()
        self._setup_events()

    # -- layout ----------------------------------------------------------------------------

    def _render(self) -> None:
        kinds = self.arena.kinds()
        gr.Markdown(T("arena_intro"), elem_classes=["arena-intro"])
        with gr.Row(equal_height=True):
            self.kind = gr.Radio(
                [(T(f"arena_kind_{k}"), k) for k in kinds],
                value=kinds[0] if kinds else None,
                show_label=False,
                scale=1,
                min_width=160,
                elem_id="arena-kind",
            )
        with gr.Row(equal_height=True):
            self.prompt = gr.Textbox(
                show_label=False,
                placeholder=T("arena_placeholder"),
                lines=1,
                scale=4,
                min_width=200,
                elem_id="arena-prompt",
            )
            self.start_btn = gr.Button(
                T("arena_start"), variant="primary", scale=1, min_width=100, elem_id="arena-start"
            )
        self._render_sides()
        with gr.Row(equal_height=True, elem_id="arena-votes"):
            self.votes = {
                choice: gr.Button(
                    T(key), interactive=False, min_width=70, size="sm", elem_id=f"arena-vote-{choice.replace('_', '-')}"
                )
                for choice, key in VOTES
            }
        with gr.Accordion(T("arena_why"), open=False):
            self.reasons = gr.CheckboxGroup([(T(f"arena_reason_{r}"), r) for r in REASONS], show_label=False)
            self.comment = gr.Textbox(show_label=False, placeholder=T("rate_comment"), lines=1)
        self.result = gr.Markdown(elem_id="arena-result")
        self.pair_id = gr.State(None)

    def _render_sides(self) -> None:
        # Side by side even on a phone (two 160 px columns fit 390 px), each answer in a box of
        # its own height, so the vote buttons stay on the same screen.
        self.texts: dict[str, Any] = {}
        self.images: dict[str, Any] = {}
        with gr.Row(equal_height=True, elem_id="arena-sides"):
            for side in ("a", "b"):
                with gr.Column(min_width=150, elem_classes=["arena-side"]):
                    gr.Markdown(f"**{side.upper()}**", elem_classes=["arena-label"])
                    self.texts[side] = gr.Markdown(
                        max_height=260,
                        min_height=120,
                        elem_id=f"arena-{side}",
                        elem_classes=["arena-answer"],
                        sanitize_html=True,
                    )
                    self.images[side] = gr.Image(
                        visible=False,
                        show_label=False,
                        height=220,
                        interactive=False,
                        elem_id=f"arena-{side}-image",
                        buttons=["fullscreen"],
                    )

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        texts, images, votes = list(self.texts.values()), list(self.images.values()), list(self.votes.values())
        outputs = [self.pair_id, *texts, *images, self.result, *votes]
        battle = user_errors(self.battle, outputs=len(outputs))
        for trigger in (self.start_btn.click, self.prompt.submit):
            trigger(
                # Its own group (text and image battles share one button), capped and fairly shared
                # like the other generation groups (ui/admission.py).
                battle,
                [self.kind, self.prompt],
                outputs,
                api_visibility="private",
                concurrency_id="arena",
                concurrency_limit=self.services.settings.text_concurrency,
                show_progress="minimal",
                show_progress_on=[self.result],
                js=scroll_to("#arena-sides", inputs=2),
            )
        self.kind.change(self.switch, [self.kind], [*texts, *images], **QUICK)
        for choice, button in self.votes.items():
            button.click(
                user_errors(self._voter(choice), outputs=3 + len(votes)),
                [self.pair_id, self.reasons, self.comment],
                [self.result, self.reasons, self.comment, *votes],
                api_visibility="private",
                concurrency_limit=None,
            )

    def _sides(self, texts: Any, images: Any) -> Updates:
        """The same update for both answers' text boxes and for both image boxes."""
        return {**dict.fromkeys(self.texts.values(), texts), **dict.fromkeys(self.images.values(), images)}

    def _voting(self, enabled: bool) -> Updates:
        return dict.fromkeys(self.votes.values(), gr.update(interactive=enabled))

    def switch(self, kind: str) -> Updates:
        image = kind == "image"
        return self._sides(gr.update(visible=not image), gr.update(visible=image))

    def battle(self, kind, prompt, request: gr.Request, progress=gr.Progress()) -> Iterator[Updates]:
        if kind == "image":
            self.services.image.validate(prompt)  # a bad prompt is reported before any work
        else:
            self.services.text.build_request(
                prompt
            )  # an empty or too long prompt: its message, and no "⏳" left behind
        lang = lang_of(request)
        yield {
            self.pair_id: None,
            **self._sides("", None),
            self.result: tr("arena_drawing", lang),
            **self._voting(False),
        }
        if kind == "image":
            yield self._image_battle(prompt, request, progress)
        else:
            yield from self._text_battle(prompt, request)

    def _image_battle(self, prompt: str, request: gr.Request, progress: Any) -> Updates:
        lang = lang_of(request)

        def on_step(step: int, total: int) -> bool:
            progress((step, total), desc=tr("step_n", lang, step=step, total=total), unit="steps")
            return True

        pair = self.arena.image_battle(prompt, session_id=session_of(request), on_step=on_step)
        status = tr("arena_ready", lang)
        if self.services.image.is_placeholder:  # both sides: the image contestants share the model
            status += "\n\n" + tr("arena_placeholder_both", lang)
        updates: Updates = {self.pair_id: pair.pair_id, self.result: status, **self._voting(True)}
        for side in ("a", "b"):
            output = self.services.feedback.find_output(getattr(pair, side).output_id)
            updates[self.images[side]] = output.output.get("path") if output else None
        return updates

    def _text_battle(self, prompt: str, request: gr.Request) -> Iterator[Updates]:
        lang = lang_of(request)
        try:
            with PACER.stream() as due:
                for update in self.arena.text_battle(prompt, session_id=session_of(request)):
                    shown = {self.texts["a"]: update.a, self.texts["b"]: update.b}
                    if update.pair is not None:
                        images = dict.fromkeys(self.images.values(), None)
                        ready = {self.pair_id: update.pair.pair_id, self.result: tr("arena_ready", lang)}
                        yield {**ready, **shown, **images, **self._voting(True)}
                    elif due():
                        yield shown
        except AigcError:
            # The toast says what went wrong; the status line must not go on saying "answering…".
            yield {self.result: ""}
            raise

    def _voter(self, choice: str) -> Any:
        def cast(pair_id, reasons, comment, request: gr.Request) -> Updates:
            return self.vote(choice, pair_id, reasons, comment, request)

        return cast

    def vote(self, choice: str, pair_id, reasons, comment, request: gr.Request) -> Updates:
        """Store the vote, then reveal who was who; the buttons lock (one vote per battle)."""
        lang = lang_of(request)
        if not pair_id:
            return {self.result: tr("arena_first", lang)}
        record, new = self.arena.vote(pair_id, choice, reasons=reasons, comment=comment, session_id=session_of(request))
        return {self.result: reveal(record, new, lang), self.reasons: [], self.comment: "", **self._voting(False)}


def _knob(key: str, lang: str) -> str:
    """A recipe setting's name as the page shows it ("temperature" → 温度 in zh)."""
    label = {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_new_tokens": "max_new_tokens",
        "steps": "steps",
        "guidance_scale": "guidance",
        "system": "system_prompt",
        "preset": "scenario",
        "style": "style",
    }.get(key)
    if label is None or lang != "zh":
        return key
    return tr(label, lang).split("（")[0]


def reveal(vote: dict[str, Any], new: bool, lang: str) -> str:
    """Who was who, and what was stored."""

    def who(side: str) -> str:
        s = vote[side]
        recipe = s.get("params", {}).get("contestant_recipe") or s.get("params", {})
        knobs = ", ".join(f"{_knob(k, lang)} {v}" for k, v in recipe.items() if k not in ("contestant", "model"))
        return f"**{side.upper()}** = `{s['contestant']}` · `{(s.get('model') or {}).get('id', '')}`" + (
            f" · {knobs}" if knobs else ""
        )

    head = tr("arena_saved" if new else "arena_already", lang, choice=tr(f"arena_choice_{vote['choice']}", lang))
    return f"{head}\n\n{who('a')}  \n{who('b')}"
