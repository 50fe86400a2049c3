"""Text studio tab: scenario preset, model, prompt, streamed output, stats, rating.

Components first (``_render``), events last (``_wire``), like gradio's own
``ChatInterface``. The ``/generate_text`` API calls the same service generator.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.services.text import PRESETS
from aigc_demo.ui.common import (
    OnLoad,
    StopFlags,
    recalled,
    remembered,
    scroll_to,
    session_of,
    toggle_stop,
    user_errors,
)
from aigc_demo.ui.feedback import build_rating_widget
from aigc_demo.ui.i18n import T, is_small_model, label, lang_of, model_label, tr
from aigc_demo.ui.streaming import PACER, STREAM_INTERVAL_S  # noqa: F401 - bench/text_stream.py reads the interval here

INPUT_KEYS = (
    "prompt",
    "preset",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop_strings",
    "system",
    "mode",
    "model",
)


def build(services: Services, examples: list[str]) -> OnLoad:
    ui = _render(services, examples)
    _wire(services, ui)
    # The conversation survives a reload of the page (kept in the browser, for this session).
    saved = gr.BrowserState(None, storage_key="aigc-text-conversation")
    remembered(ui["turns"], saved, lambda turns: turns)

    def restore(value: Any, request: gr.Request) -> tuple[Any, Any]:
        turns = recalled(value, request)
        return (turns, turns) if isinstance(turns, list) and turns else (gr.skip(), gr.skip())

    return restore, [ui["chat"], ui["turns"]], [saved]


def _render(services: Services, examples: list[str]) -> dict[str, Any]:
    s = services.settings
    ui: dict[str, Any] = {}
    free = PRESETS["free"]
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            with gr.Row():
                ui["preset"] = gr.Dropdown(
                    choices=[(label("preset", p.key), p.key) for p in PRESETS.values()],
                    value="free",
                    label=T("scenario"),
                    scale=3,
                    min_width=200,  # on a phone each box takes its own row instead of two cut-off halves
                )
                choices = services.registry.text_choices()
                ui["model"] = gr.Dropdown(
                    choices=[(model_label(m), m) for m in choices],
                    value=choices[0],
                    label=T("model"),
                    scale=3,
                    min_width=200,
                )
            ui["model_note"] = gr.Markdown(
                T("small_model_note"), visible=is_small_model(choices[0]), elem_classes=["model-note"]
            )
            # No max_length on any text box: the browser would cut a long paste silently; the
            # server names the limit instead, and the text stays in the box to shorten.
            ui["prompt"] = gr.Textbox(
                label=T("prompt"),
                placeholder=T("text_placeholder"),
                lines=5,
                autofocus=True,
                elem_id="text-prompt",
            )
            with gr.Row():
                ui["generate"] = gr.Button(T("generate"), variant="primary", elem_id="text-generate", scale=3)
                ui["stop"] = gr.Button(T("stop"), variant="stop", visible=False, scale=3, elem_id="text-stop")
                ui["regenerate"] = gr.Button(T("new_seed"), scale=1, min_width=130, elem_id="text-regenerate")
            with gr.Accordion(T("parameters"), open=False):
                ui["max_new_tokens"] = gr.Slider(
                    16,
                    s.max_new_tokens_cap,
                    value=min(free.max_new_tokens, s.max_new_tokens_cap),
                    step=16,
                    label=T("max_new_tokens"),
                )
                ui["temperature"] = gr.Slider(0.0, 2.0, value=free.temperature, step=0.05, label=T("temperature"))
                ui["top_p"] = gr.Slider(0.05, 1.0, value=free.top_p, step=0.05, label=T("top_p"))
                ui["seed"] = gr.Number(value=-1, precision=0, label=T("seed_random"))
                ui["stop_strings"] = gr.Textbox(label=T("stop_strings"), placeholder=T("stop_placeholder"))
                ui["system"] = gr.Textbox(label=T("system_prompt"), lines=2)
                ui["mode"] = gr.Radio(
                    [(T("mode_chat"), "chat"), (T("mode_continue"), "continue")],
                    value="chat",
                    label=T("mode"),
                    info=T("mode_info"),
                )
            if examples:
                gr.Examples(examples=[[e] for e in examples], inputs=[ui["prompt"]], label=T("try_one"))
        with gr.Column(scale=6, min_width=320):
            # A conversation, rendered as Markdown (the Chatbot sanitises any HTML the model
            # writes); the user's own messages can be edited, which re-asks from there.
            ui["chat"] = gr.Chatbot(
                value=[],
                show_label=False,
                height=460,
                elem_id="text-output",
                editable="user",
                placeholder=T("text_chat_placeholder"),
                sanitize_html=True,
                render_markdown=True,
                buttons=["copy", "copy_all"],
                feedback_options=None,  # rated with the widget below: reasons and a comment too
            )
            ui["turns"] = gr.State([])  # the finished exchanges, as the model is sent them next
            ui["stats"] = gr.Markdown(elem_classes=["stats"], elem_id="text-stats")
            with gr.Row():
                ui["more"] = gr.Button(T("continue_answer"), visible=False, size="sm", elem_id="text-continue")
                ui["new_chat"] = gr.Button(T("new_conversation"), size="sm", elem_id="text-new-chat")
            ui["rating"] = build_rating_widget(services.feedback)
    return ui


def _stats_line(stats: Any, model: str, done: bool, lang: str = "en") -> str:
    icon = "⏳ "
    if done:
        if stats.finish_reason == "stopped":
            icon = tr("stopped", lang) + " · "
        elif stats.finish_reason == "repetition":
            icon = tr("loop_cut", lang) + " · "
        elif stats.finish_reason == "length":  # cut at the token limit: say so, and how to get the rest
            icon = tr("truncated", lang) + " · "
        else:
            icon = "✅ "
    parts = [tr("stats_tokens", lang, n=stats.completion_tokens)]
    if stats.ttft_ms is not None:
        parts.append(tr("stats_first", lang, s=stats.ttft_ms / 1000))
    if done:
        parts.append(tr("stats_speed", lang, v=stats.tokens_per_s))
        parts.append(tr("stats_total", lang, s=stats.total_ms / 1000))
    parts.append(f"`{model}`")
    return icon + " · ".join(parts)


def _shown(turns: list[dict[str, str]], *pending: str) -> list[dict[str, str]]:
    """What the Chatbot shows: the finished turns, then the exchange in progress."""
    return [
        *turns,
        *({"role": role, "content": text} for role, text in zip(("user", "assistant"), pending, strict=False)),
    ]


def _wire(services: Services, ui: dict[str, Any]) -> None:
    rating = ui["rating"]
    registry = services.registry
    stop_flags = StopFlags()

    def generate(
        prompt, preset, max_new_tokens, temperature, top_p, seed, stop, system, mode, model, turns, request: gr.Request
    ):
        options = {
            "preset": preset,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "stop": stop,
            "system": system,
            "mode": mode,
            "history": turns if mode == "chat" else None,
        }
        # Validate before showing any progress, so a bad input gets its message at once.
        services.text.build_request(prompt, **options)
        model_id = model or registry.model_id("text")
        lang = lang_of(request)
        loading = "" if registry.is_loaded("text", model_id) else tr("loading_model", lang, model=model_id)
        asked = prompt.strip()
        # The question moves into the conversation; the old rating controls reset.
        yield "", _shown(turns, asked, ""), turns, loading, gr.update(visible=False), *rating.reset(None)
        session = session_of(request)
        try:
            with stop_flags.start(session) as flag, PACER.stream() as due:
                for update in services.text.stream(
                    prompt, model=model_id, session_id=session, should_stop=flag.is_set, **options
                ):
                    if (result := update.result) is not None:  # the last update: the recorded output
                        stats = (
                            _stats_line(update.stats, model_id, True, lang)
                            + " · "
                            + tr("stats_seed", lang, seed=result["seed"])
                        )
                        done = _shown(turns, asked, update.text)
                        cut = result["finish_reason"] == "length"
                        yield gr.skip(), done, done, stats, gr.update(visible=cut), *rating.reset(result["output_id"])
                    elif due():
                        shown = _shown(turns, asked, update.text)
                        yield (
                            gr.skip(),
                            shown,
                            gr.skip(),
                            _stats_line(update.stats, model_id, False, lang),
                            gr.skip(),
                            *rating.unchanged(),
                        )
        except AigcError:
            # The question goes back in the box (nothing lost) and the toast says what went
            # wrong; a "loading…" or "⏳" line left above it would not.
            yield prompt, turns, gr.skip(), "", gr.skip(), *rating.unchanged()
            raise

    def more(output_id, max_new_tokens, turns, model, request: gr.Request):
        """Continue the last answer from its last word (shown when it was cut at the limit)."""
        lang = lang_of(request)
        if not output_id or not turns:
            return
        yield gr.skip(), gr.skip(), gr.skip(), gr.update(visible=False), *rating.reset(None)
        session = session_of(request)
        with stop_flags.start(session) as flag, PACER.stream() as due:
            for update in services.text.stream(
                None,
                continue_output_id=output_id,
                max_new_tokens=max_new_tokens,
                session_id=session,
                should_stop=flag.is_set,
            ):
                shown = [*turns[:-1], {"role": "assistant", "content": update.text}]
                if (result := update.result) is not None:
                    stats = _stats_line(update.stats, result["model"], True, lang)
                    cut = result["finish_reason"] == "length"
                    yield shown, shown, stats, gr.update(visible=cut), *rating.reset(result["output_id"])
                elif due():
                    yield (
                        shown,
                        gr.skip(),
                        _stats_line(update.stats, model, False, lang),
                        gr.skip(),
                        *rating.unchanged(),
                    )

    def take_back(turns, index: int | None = None):
        """Undo / retry / edit: the exchange at ``index`` (default: the last) and everything
        after it leave the conversation, and its question returns to the box."""
        users = [i for i, m in enumerate(turns) if m["role"] == "user"]
        if not users:
            return gr.skip(), turns, turns, gr.skip(), gr.update(visible=False), *rating.reset(None)
        cut = users[-1] if index is None else max((i for i in users if i <= index), default=users[-1])
        kept = turns[:cut]
        return turns[cut]["content"], kept, kept, "", gr.update(visible=False), *rating.reset(None)

    def edited(turns, data: gr.EditData):
        index = data.index if isinstance(data.index, int) else data.index[0]
        question, *rest = take_back(turns, index)
        return (data.value if isinstance(data.value, str) else question), *rest

    def apply_preset(key: str):
        """A scenario brings its suggested sampling settings (the user can still change them)."""
        preset = PRESETS.get(key, PRESETS["free"])
        cap = services.settings.max_new_tokens_cap
        return (
            gr.update(value=preset.temperature),
            gr.update(value=min(preset.max_new_tokens, cap)),
            gr.update(value=preset.top_p),
        )

    inputs = [*(ui[k] for k in INPUT_KEYS), ui["turns"]]
    outputs = [ui["prompt"], ui["chat"], ui["turns"], ui["stats"], ui["more"], *rating.components]
    back = [ui["prompt"], ui["turns"], ui["chat"], ui["stats"], ui["more"], *rating.components]
    show_stop, hide_stop = (lambda: toggle_stop(True)), (lambda: toggle_stop(False))
    handler = user_errors(generate, outputs=len(outputs))
    # The stats line already says what is happening; a light spinner on the chat only.
    progress = {"show_progress": "minimal", "show_progress_on": [ui["chat"]]}
    # Several testers generate at once: engines that batch (llama.cpp, a remote server) serve
    # them together; the transformers engine queues them on its compute thread.
    llm = {"concurrency_id": "llm", "concurrency_limit": services.settings.text_concurrency}
    quick = {"api_visibility": "private", "queue": False}

    def then_generate(event: Any) -> None:
        event.then(show_stop, None, [ui["generate"], ui["stop"]], **quick).then(
            handler, inputs, outputs, api_visibility="private", **llm, **progress
        ).then(hide_stop, None, [ui["generate"], ui["stop"]], **quick)

    for trigger in (ui["generate"].click, ui["prompt"].submit):
        then_generate(trigger(None, js=scroll_to("#text-output")))
    # 🔄 and the Chatbot's own ↻ ask the last question again with a fresh seed; editing a
    # question asks it again from there; ↶ takes the last exchange back into the box.
    for trigger in (ui["regenerate"].click, ui["chat"].retry):
        then_generate(trigger(lambda: -1, None, [ui["seed"]], **quick).then(take_back, [ui["turns"]], back, **quick))
    then_generate(ui["chat"].edit(edited, [ui["turns"]], back, **quick))
    ui["chat"].undo(take_back, [ui["turns"]], back, **quick)
    ui["more"].click(show_stop, None, [ui["generate"], ui["stop"]], **quick).then(
        user_errors(more, outputs=4 + len(rating.components)),
        [rating.output_id, ui["max_new_tokens"], ui["turns"], ui["model"]],
        [ui["chat"], ui["turns"], ui["stats"], ui["more"], *rating.components],
        api_visibility="private",
        **llm,
        **progress,
    ).then(hide_stop, None, [ui["generate"], ui["stop"]], **quick)

    def new_chat():
        return [], [], "", gr.update(visible=False), *rating.reset(None)

    for trigger in (ui["new_chat"].click, ui["chat"].clear):
        trigger(new_chat, None, [ui["chat"], ui["turns"], ui["stats"], ui["more"], *rating.components], **quick)
    ui["preset"].change(
        apply_preset,
        [ui["preset"]],
        [ui["temperature"], ui["max_new_tokens"], ui["top_p"]],
        api_visibility="private",
        queue=False,
    )

    ui["model"].change(
        lambda model: gr.update(visible=is_small_model(model or "")),
        [ui["model"]],
        [ui["model_note"]],
        api_visibility="private",
        queue=False,
    )

    def request_stop(request: gr.Request):
        stop_flags.stop(session_of(request))
        return hide_stop()

    ui["stop"].click(request_stop, None, [ui["generate"], ui["stop"]], api_visibility="private", queue=False)
