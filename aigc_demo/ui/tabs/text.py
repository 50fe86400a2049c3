"""Text studio tab: scenario preset, model, prompt, streamed output, stats, rating.

A tab class (``ui/tabs/base.py`` says how they are built). The ``/generate_text`` API
(``ui/api.py``) calls the same service generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.services.text import PRESETS
from aigc_demo.ui.common import (
    OnLoad,
    recalled,
    remembered,
    scroll_to,
    session_of,
    user_errors,
)
from aigc_demo.ui.feedback import RatingWidget
from aigc_demo.ui.i18n import T, is_small_model, label, lang_of, model_label, tr
from aigc_demo.ui.streaming import PACER, STREAM_INTERVAL_S  # noqa: F401 - bench/text_stream.py reads the interval here
from aigc_demo.ui.tabs.base import QUICK, StoppableTab, Updates


def build(services: Services, examples: list[str]) -> OnLoad:
    return TextTab(services, examples).on_load()


class TextTab(StoppableTab):
    """The Text tab's components and handlers (build it inside its ``gr.Tab``)."""

    def __init__(self, services: Services, examples: list[str]) -> None:
        super().__init__()
        self.services = services
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                self._render_inputs(examples)
            with gr.Column(scale=6, min_width=320):
                self._render_conversation()
        self._setup_events()

    # -- layout ----------------------------------------------------------------------------

    def _render_inputs(self, examples: list[str]) -> None:
        with gr.Row():
            self.preset = gr.Dropdown(
                choices=[(label("preset", p.key), p.key) for p in PRESETS.values()],
                value="free",
                label=T("scenario"),
                scale=3,
                min_width=200,  # on a phone each box takes its own row instead of two cut-off halves
            )
            choices = self.services.registry.text_choices()
            self.model = gr.Dropdown(
                choices=[(model_label(m), m) for m in choices],
                value=choices[0],
                label=T("model"),
                scale=3,
                min_width=200,
            )
        self.model_note = gr.Markdown(
            T("small_model_note"), visible=is_small_model(choices[0]), elem_classes=["model-note"]
        )
        # No max_length on any text box: the browser would cut a long paste silently; the
        # server names the limit instead, and the text stays in the box to shorten.
        self.prompt = gr.Textbox(
            label=T("prompt"),
            placeholder=T("text_placeholder"),
            lines=5,
            autofocus=True,
            elem_id="text-prompt",
        )
        with gr.Row():
            self.generate_btn = gr.Button(T("generate"), variant="primary", elem_id="text-generate", scale=3)
            self.stop_btn = gr.Button(T("stop"), variant="stop", visible=False, scale=3, elem_id="text-stop")
            self.regenerate_btn = gr.Button(T("new_seed"), scale=1, min_width=130, elem_id="text-regenerate")
        self._render_parameters()
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[self.prompt], label=T("try_one"))

    def _render_parameters(self) -> None:
        free, cap = PRESETS["free"], self.services.settings.max_new_tokens_cap
        with gr.Accordion(T("parameters"), open=False):
            self.max_new_tokens = gr.Slider(
                16, cap, value=min(free.max_new_tokens, cap), step=16, label=T("max_new_tokens")
            )
            self.temperature = gr.Slider(0.0, 2.0, value=free.temperature, step=0.05, label=T("temperature"))
            self.top_p = gr.Slider(0.05, 1.0, value=free.top_p, step=0.05, label=T("top_p"))
            self.seed = gr.Number(value=-1, precision=0, label=T("seed_random"))
            self.stop_strings = gr.Textbox(label=T("stop_strings"), placeholder=T("stop_placeholder"))
            self.system = gr.Textbox(label=T("system_prompt"), lines=2)
            self.mode = gr.Radio(
                [(T("mode_chat"), "chat"), (T("mode_continue"), "continue")],
                value="chat",
                label=T("mode"),
                info=T("mode_info"),
            )

    def _render_conversation(self) -> None:
        # A conversation, rendered as Markdown (the Chatbot sanitises any HTML the model
        # writes); the user's own messages can be edited, which re-asks from there.
        self.chat = gr.Chatbot(
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
        self.turns = gr.State([])  # the finished exchanges, as the model is sent them next
        self.stats = gr.Markdown(elem_classes=["stats"], elem_id="text-stats")
        with gr.Row():
            self.more_btn = gr.Button(T("continue_answer"), visible=False, size="sm", elem_id="text-continue")
            self.new_chat_btn = gr.Button(T("new_conversation"), size="sm", elem_id="text-new-chat")
        self.rating = RatingWidget(self.services.feedback, corrections=True)

    def on_load(self) -> OnLoad:
        """The conversation survives a reload of the page (kept in the browser, for this session),
        and the model list is read afresh: a model trained since the server started is offered."""
        saved = gr.BrowserState(None, storage_key="aigc-text-conversation", render=False)  # see ui/demo.py
        remembered(self.turns, saved, lambda turns: turns)

        def restore(value: Any, request: gr.Request) -> Any:
            choices = self.services.registry.text_choices()
            updates: Updates = {self.model: gr.update(choices=[(model_label(m), m) for m in choices])}
            turns = recalled(value, request)
            if isinstance(turns, list) and turns:
                updates |= {self.chat: turns, self.turns: turns}
            return updates

        return restore, [self.chat, self.turns, self.model], [saved]

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        outputs = [self.prompt, self.chat, self.turns, self.stats, self.more_btn, *self.rating.components]
        generate = user_errors(self.generate, outputs=len(outputs))
        buttons = self.stop_buttons
        # The stats line already says what is happening; a light spinner on the chat only.
        progress = {"show_progress": "minimal", "show_progress_on": [self.chat]}
        # Several testers generate at once: engines that batch (llama.cpp, a remote server) serve
        # them together; the transformers engine queues them on its compute thread.
        llm = {"concurrency_id": "llm", "concurrency_limit": self.services.settings.text_concurrency}

        def then_generate(event: Any) -> None:
            event.then(self.show_stop, None, buttons, **QUICK).then(
                generate, self._inputs(), outputs, api_visibility="private", **llm, **progress
            ).then(self.hide_stop, None, buttons, **QUICK)

        for trigger in (self.generate_btn.click, self.prompt.submit):
            then_generate(trigger(None, js=scroll_to("#text-output")))
        # 🔄 and the Chatbot's own ↻ ask the last question again with a fresh seed; editing a
        # question asks it again from there; ↶ takes the last exchange back into the box.
        for trigger in (self.regenerate_btn.click, self.chat.retry):
            then_generate(
                trigger(lambda: -1, None, [self.seed], **QUICK).then(self.take_back, [self.turns], outputs, **QUICK)
            )
        then_generate(self.chat.edit(self.edited, [self.turns], outputs, **QUICK))
        self.chat.undo(self.take_back, [self.turns], outputs, **QUICK)
        self.more_btn.click(self.show_stop, None, buttons, **QUICK).then(
            user_errors(self.more, outputs=len(outputs)),
            [self.rating.output_id, self.max_new_tokens, self.turns, self.model],
            outputs,
            api_visibility="private",
            **llm,
            **progress,
        ).then(self.hide_stop, None, buttons, **QUICK)
        for trigger in (self.new_chat_btn.click, self.chat.clear):
            trigger(self.new_chat, None, outputs, **QUICK)
        self.preset.change(
            self.apply_preset, [self.preset], [self.temperature, self.max_new_tokens, self.top_p], **QUICK
        )
        self.model.change(self.model_changed, [self.model], [self.model_note], **QUICK)
        self.stop_btn.click(self.request_stop, None, buttons, **QUICK)

    def _inputs(self) -> list[Any]:
        """What ``generate`` reads, in its parameters' order."""
        return [
            self.prompt,
            self.preset,
            self.max_new_tokens,
            self.temperature,
            self.top_p,
            self.seed,
            self.stop_strings,
            self.system,
            self.mode,
            self.model,
            self.turns,
        ]

    def generate(
        self,
        prompt,
        preset,
        max_new_tokens,
        temperature,
        top_p,
        seed,
        stop,
        system,
        mode,
        model,
        turns,
        request: gr.Request,
    ) -> Iterator[Updates]:
        """Ask: the question moves into the conversation and the answer streams in under it."""
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
        text = self.services.text
        # Validate before showing any progress, so a bad input gets its message at once.
        text.build_request(prompt, **options)
        registry = self.services.registry
        model_id = model or registry.model_id("text")
        lang = lang_of(request)
        loading = "" if registry.is_loaded("text", model_id) else tr("loading_model", lang, model=model_id)
        asked = prompt.strip()
        # The question moves into the conversation; the old rating controls reset.
        yield {
            self.prompt: "",
            self.chat: _shown(turns, asked, ""),
            self.turns: turns,
            self.stats: loading,
            self.more_btn: gr.update(visible=False),
            **self.rating.cleared(None),
        }
        session = session_of(request)
        try:
            with self.stop_flags.start(session) as flag, PACER.stream() as due:
                for update in text.stream(
                    prompt, model=model_id, session_id=session, should_stop=flag.is_set, **options
                ):
                    if (result := update.result) is not None:  # the last update: the recorded output
                        stats = _stats_line(update.stats, model_id, True, lang)
                        yield self._finished(
                            _shown(turns, asked, update.text),
                            result,
                            stats + " · " + tr("stats_seed", lang, seed=result["seed"]),
                        )
                    elif due():
                        yield {
                            self.chat: _shown(turns, asked, update.text),
                            self.stats: _stats_line(update.stats, model_id, False, lang),
                        }
        except AigcError:
            # The question goes back in the box (nothing lost) and the toast says what went
            # wrong; a "loading…" or "⏳" line left above it would not.
            yield {self.prompt: prompt, self.chat: turns, self.stats: ""}
            raise

    def _finished(self, shown: list[dict[str, str]], result: dict[str, Any], stats: str) -> Updates:
        """The answer is recorded: it joins the conversation and can be rated (or continued, when cut)."""
        return {
            self.chat: shown,
            self.turns: shown,
            self.stats: stats,
            self.more_btn: gr.update(visible=result["finish_reason"] == "length"),
            **self.rating.cleared(result["output_id"]),
        }

    def more(self, output_id, max_new_tokens, turns, model, request: gr.Request) -> Iterator[Updates]:
        """Continue the last answer from its last word (shown when it was cut at the limit)."""
        lang = lang_of(request)
        if not output_id or not turns:
            return
        yield {self.more_btn: gr.update(visible=False), **self.rating.cleared(None)}
        session = session_of(request)
        with self.stop_flags.start(session) as flag, PACER.stream() as due:
            for update in self.services.text.stream(
                None,
                continue_output_id=output_id,
                max_new_tokens=max_new_tokens,
                session_id=session,
                should_stop=flag.is_set,
            ):
                shown = [*turns[:-1], {"role": "assistant", "content": update.text}]
                if (result := update.result) is not None:
                    yield self._finished(shown, result, _stats_line(update.stats, result["model"], True, lang))
                elif due():
                    yield {self.chat: shown, self.stats: _stats_line(update.stats, model, False, lang)}

    def take_back(self, turns, index: int | None = None) -> Updates:
        """Undo / retry / edit: the exchange at ``index`` (default: the last) and everything
        after it leave the conversation, and its question returns to the box."""
        users = [i for i, m in enumerate(turns) if m["role"] == "user"]
        if not users:
            return {
                self.chat: turns,
                self.turns: turns,
                self.more_btn: gr.update(visible=False),
                **self.rating.cleared(None),
            }
        cut = users[-1] if index is None else max((i for i in users if i <= index), default=users[-1])
        kept = turns[:cut]
        return {
            self.prompt: turns[cut]["content"],
            self.chat: kept,
            self.turns: kept,
            self.stats: "",
            self.more_btn: gr.update(visible=False),
            **self.rating.cleared(None),
        }

    def edited(self, turns, data: gr.EditData) -> Updates:
        index = data.index if isinstance(data.index, int) else data.index[0]
        updates = self.take_back(turns, index)
        if isinstance(data.value, str):
            updates[self.prompt] = data.value
        return updates

    def new_chat(self) -> Updates:
        return {
            self.chat: [],
            self.turns: [],
            self.stats: "",
            self.more_btn: gr.update(visible=False),
            **self.rating.cleared(None),
        }

    def apply_preset(self, key: str) -> Updates:
        """A scenario brings its suggested sampling settings (the user can still change them)."""
        preset = PRESETS.get(key, PRESETS["free"])
        return {
            self.temperature: gr.update(value=preset.temperature),
            self.max_new_tokens: gr.update(value=min(preset.max_new_tokens, self.services.settings.max_new_tokens_cap)),
            self.top_p: gr.update(value=preset.top_p),
        }

    def model_changed(self, model: str | None) -> Updates:
        return {self.model_note: gr.update(visible=is_small_model(model or ""))}


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
