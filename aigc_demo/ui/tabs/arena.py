"""Arena tab: two anonymous answers to one prompt, side by side; vote; then see who was who.

Blind by construction: the page shows "A" and "B" until the vote is stored, the positions
are random per battle, and both sides get the same prompt and seed. The ``/arena_text``,
``/arena_image`` and ``/arena_vote`` APIs call the same service.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.services.arena import REASONS
from aigc_demo.ui.common import StopFlags, scroll_to, session_of, user_errors
from aigc_demo.ui.i18n import T, lang_of, tr
from aigc_demo.ui.streaming import PACER

VOTES = (("a", "arena_vote_a"), ("tie", "arena_vote_tie"), ("both_bad", "arena_vote_bad"), ("b", "arena_vote_b"))


def build(services: Services, examples: list[str]) -> None:
    ui = _render(services)
    _wire(services, ui)


def _render(services: Services) -> dict[str, Any]:
    ui: dict[str, Any] = {}
    kinds = services.arena.kinds()
    gr.Markdown(T("arena_intro"), elem_classes=["arena-intro"])
    with gr.Row(equal_height=True):
        ui["kind"] = gr.Radio(
            [(T(f"arena_kind_{k}"), k) for k in kinds],
            value=kinds[0] if kinds else None,
            show_label=False,
            scale=1,
            min_width=160,
            elem_id="arena-kind",
        )
    with gr.Row(equal_height=True):
        ui["prompt"] = gr.Textbox(
            show_label=False,
            placeholder=T("arena_placeholder"),
            lines=1,
            scale=4,
            min_width=200,
            elem_id="arena-prompt",
        )
        ui["start"] = gr.Button(T("arena_start"), variant="primary", scale=1, min_width=100, elem_id="arena-start")
    # Side by side even on a phone (two 160 px columns fit 390 px), each answer in a box of
    # its own height, so the vote buttons stay on the same screen.
    with gr.Row(equal_height=True, elem_id="arena-sides"):
        for side in ("a", "b"):
            with gr.Column(min_width=150, elem_classes=["arena-side"]):
                gr.Markdown(f"**{side.upper()}**", elem_classes=["arena-label"])
                ui[f"{side}_text"] = gr.Markdown(
                    max_height=260,
                    min_height=120,
                    elem_id=f"arena-{side}",
                    elem_classes=["arena-answer"],
                    sanitize_html=True,
                )
                ui[f"{side}_image"] = gr.Image(
                    visible=False,
                    show_label=False,
                    height=220,
                    interactive=False,
                    elem_id=f"arena-{side}-image",
                    buttons=["fullscreen"],
                )
    with gr.Row(equal_height=True, elem_id="arena-votes"):
        for choice, key in VOTES:
            ui[f"vote_{choice}"] = gr.Button(
                T(key), interactive=False, min_width=70, size="sm", elem_id=f"arena-vote-{choice.replace('_', '-')}"
            )
    with gr.Accordion(T("arena_why"), open=False):
        ui["reasons"] = gr.CheckboxGroup([(T(f"arena_reason_{r}"), r) for r in REASONS], show_label=False)
        ui["comment"] = gr.Textbox(show_label=False, placeholder=T("rate_comment"), lines=1)
    ui["result"] = gr.Markdown(elem_id="arena-result")
    ui["pair_id"] = gr.State(None)
    return ui


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


def _wire(services: Services, ui: dict[str, Any]) -> None:
    arena = services.arena
    stop_flags = StopFlags()
    votes = [ui[f"vote_{c}"] for c, _ in VOTES]
    shown_for = {
        "text": (gr.update(visible=True), gr.update(visible=False)),
        "image": (gr.update(visible=False), gr.update(visible=True)),
    }

    def switch(kind: str):
        text, image = shown_for.get(kind, shown_for["text"])
        return text, text, image, image

    def battle(kind, prompt, request: gr.Request, progress=gr.Progress()):
        lang, session = lang_of(request), session_of(request)
        locked = [gr.update(interactive=False)] * len(votes)
        if kind == "image":
            services.image.validate(prompt)  # a bad prompt is reported before any work
            yield None, "", "", None, None, tr("arena_drawing", lang), *locked

            def on_step(step: int, total: int) -> bool:
                progress((step, total), desc=tr("step_n", lang, step=step, total=total), unit="steps")
                return True

            pair = arena.image_battle(prompt, session_id=session, on_step=on_step)
            images = {}
            for side in ("a", "b"):
                output = services.feedback.find_output(getattr(pair, side).output_id)
                images[side] = output.output.get("path") if output else None
            ready = [gr.update(interactive=True)] * len(votes)
            status = tr("arena_ready", lang)
            if services.image.is_placeholder:  # both sides: the image contestants share the model
                status += "\n\n" + tr("arena_placeholder_both", lang)
            yield pair.pair_id, "", "", images["a"], images["b"], status, *ready
            return
        services.text.build_request(prompt)  # an empty or too long prompt: its message, and no "⏳" left behind
        yield None, "", "", None, None, tr("arena_drawing", lang), *locked
        try:
            with stop_flags.start(session) as flag, PACER.stream() as due:
                for update in arena.text_battle(prompt, session_id=session, should_stop=flag.is_set):
                    if update.pair is not None:
                        ready = [gr.update(interactive=True)] * len(votes)
                        yield update.pair.pair_id, update.a, update.b, None, None, tr("arena_ready", lang), *ready
                    elif due():
                        skips = [gr.skip()] * len(votes)
                        yield gr.skip(), update.a, update.b, gr.skip(), gr.skip(), gr.skip(), *skips
        except AigcError:
            # The toast says what went wrong; the status line must not go on saying "answering…".
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), "", *[gr.skip()] * len(votes)
            raise

    outputs = [ui["pair_id"], ui["a_text"], ui["b_text"], ui["a_image"], ui["b_image"], ui["result"], *votes]
    handler = user_errors(battle, outputs=len(outputs))
    for trigger in (ui["start"].click, ui["prompt"].submit):
        trigger(
            # Its own group (text and image battles share one button), capped and fairly shared
            # like the other generation groups (ui/admission.py).
            handler,
            [ui["kind"], ui["prompt"]],
            outputs,
            api_visibility="private",
            concurrency_id="arena",
            concurrency_limit=services.settings.text_concurrency,
            show_progress="minimal",
            show_progress_on=[ui["result"]],
            js=scroll_to("#arena-sides", inputs=2),
        )
    ui["kind"].change(
        switch,
        [ui["kind"]],
        [ui["a_text"], ui["b_text"], ui["a_image"], ui["b_image"]],
        api_visibility="private",
        queue=False,
    )

    def make_vote(choice: str):
        def cast(pair_id, reasons, comment, request: gr.Request):
            lang = lang_of(request)
            if not pair_id:
                return tr("arena_first", lang), gr.skip(), gr.skip(), *[gr.skip()] * len(votes)
            record, new = arena.vote(pair_id, choice, reasons=reasons, comment=comment, session_id=session_of(request))
            done = [gr.update(interactive=False)] * len(votes)
            return reveal(record, new, lang), [], "", *done

        return user_errors(cast, outputs=3 + len(votes))

    for choice, _ in VOTES:
        ui[f"vote_{choice}"].click(
            make_vote(choice),
            [ui["pair_id"], ui["reasons"], ui["comment"]],
            [ui["result"], ui["reasons"], ui["comment"], *votes],
            api_visibility="private",
            concurrency_limit=None,
        )
