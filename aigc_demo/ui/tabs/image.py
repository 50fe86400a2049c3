"""Image studio tab: prompt, style, size preset, seed tools, per-step progress, stop,
batch gallery with per-image rating, and this session's history.

The offline profile runs an untrained placeholder pipeline; the tab says so plainly and
explains how to point ``AIGC_IMAGE_MODEL`` at a real model.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.services.image import read_recipe, size_presets
from aigc_demo.ui.common import StopFlags, scroll_to, session_of, toggle_stop, user_errors
from aigc_demo.ui.feedback import build_rating_widget, highlight
from aigc_demo.ui.i18n import T, label, lang_of, tr

HISTORY_LIMIT = 48
INPUT_KEYS = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "num_images", "style")


def build(services: Services, examples: list[str]) -> None:
    ui = _render(services, examples)
    _wire(services, ui)


def reuse_seed(last: int | None, item: int | None) -> int:
    """♻️: the seed of the image on screen — image i of a batch was made with seed + i."""
    return -1 if last is None else int(last) + (item or 0)


def joined(words: list[str], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(words)


def _render(services: Services, examples: list[str]) -> dict[str, Any]:
    s, d = services.settings, services.image.defaults
    ui: dict[str, Any] = {}
    if services.image.is_placeholder:
        gr.Markdown(T("placeholder_banner"), elem_classes=["banner"], elem_id="image-placeholder-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            ui["prompt"] = gr.Textbox(
                label=T("prompt"),
                lines=3,
                placeholder=T("image_placeholder"),
                elem_id="image-prompt",
            )
            ui["negative_prompt"] = gr.Textbox(
                label=T("negative_prompt"),
                lines=1,
                placeholder=T("negative_placeholder"),
            )
            with gr.Row():
                ui["style"] = gr.Dropdown(
                    [(label("style", n), n) for n in services.image.styles], value="None", label=T("style"), scale=2
                )
                presets = size_presets(s.image_max_side)
                current = next((k for k, v in presets.items() if v == (d.width, d.height)), None)
                ui["size"] = gr.Dropdown(
                    [(label("size", k), k) for k in presets],
                    value=current,
                    label=T("size_preset"),
                    scale=2,
                    elem_id="image-size",
                )
            with gr.Row():
                ui["generate"] = gr.Button(T("image_generate"), variant="primary", elem_id="image-generate", scale=3)
                ui["stop"] = gr.Button(T("stop"), variant="stop", visible=False, elem_id="image-stop", scale=3)
            with gr.Accordion(T("parameters"), open=True):
                with gr.Row():
                    ui["width"] = gr.Slider(64, s.image_max_side, value=d.width, step=8, label=T("width"))
                    ui["height"] = gr.Slider(64, s.image_max_side, value=d.height, step=8, label=T("height"))
                with gr.Row():
                    ui["steps"] = gr.Slider(1, s.image_max_steps, value=d.steps, step=1, label=T("steps"))
                    ui["guidance_scale"] = gr.Slider(0.0, 20.0, value=d.guidance_scale, step=0.5, label=T("guidance"))
                with gr.Row(equal_height=True):
                    ui["seed"] = gr.Number(value=-1, precision=0, label=T("seed_random"), scale=3)
                    ui["random_seed"] = gr.Button("🎲", scale=0, min_width=48, elem_id="seed-random")
                    ui["reuse_seed"] = gr.Button(T("reuse_seed"), scale=0, min_width=70, elem_id="seed-reuse")
                    ui["num_images"] = gr.Slider(1, s.image_max_batch, value=1, step=1, label=T("num_images"), scale=3)
            if examples:
                gr.Examples(examples=[[e] for e in examples], inputs=[ui["prompt"]], label=T("try_one"))
        with gr.Column(scale=6, min_width=320):
            ui["gallery"] = gr.Gallery(
                # Height follows the images: a batch of four is seen whole, not two and a scrollbar.
                label=T("gallery"),
                columns=2,
                height="auto",
                format="png",
                object_fit="contain",
                elem_id="image-gallery",
                buttons=["download", "fullscreen"],
            )
            ui["info"] = gr.Markdown(elem_classes=["stats"], elem_id="image-info")
            ui["use_settings"] = gr.Button(
                T("use_settings"), size="sm", interactive=False, elem_id="image-use-settings"
            )
            ui["rating"] = build_rating_widget(services.feedback)
            ui["history"] = gr.Gallery(
                label=T("history"),
                columns=6,
                height=160,
                format="png",
                object_fit="contain",
                elem_id="image-history",
                buttons=["download"],
            )
            with gr.Accordion(T("recipe_from_png"), open=False, elem_id="image-recipe"):
                # gr.File keeps the upload byte for byte (an Image component would re-encode it
                # and drop the text chunks that hold the settings).
                ui["recipe_file"] = gr.File(
                    label=T("recipe_drop"),
                    file_types=[".png"],
                    type="filepath",
                    height=120,
                    elem_id="image-recipe-file",
                )
    ui["last_seed"] = gr.State(None)
    ui["history_items"] = gr.State([])
    ui["result_paths"] = gr.State([])
    ui["selected_path"] = gr.State(None)  # the image whose settings "use these settings" takes
    return ui


def _wire(services: Services, ui: dict[str, Any]) -> None:
    rating = ui["rating"]
    image = services.image
    stop_flags = StopFlags()

    def generate(
        prompt,
        negative_prompt,
        steps,
        guidance_scale,
        width,
        height,
        seed,
        num_images,
        style,
        history,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        options = {
            "negative_prompt": negative_prompt,
            "steps": steps,
            "guidance_scale": guidance_scale,
            "width": width,
            "height": height,
            "seed": seed,
            "num_images": num_images,
            "style": style,
        }
        image.validate(prompt, **options)  # a bad value is reported before any work
        if not services.registry.is_loaded("image"):
            progress(0, desc=tr("loading_image_model", lang_of(request)))
        session = session_of(request)
        lang = lang_of(request)
        with stop_flags.start(session) as flag:

            def on_step(step: int, total: int) -> bool:
                progress((step, total), desc=tr("step_n", lang, step=step, total=total), unit="steps")
                return not flag.is_set()

            result = image.generate(prompt, session_id=session, on_step=on_step, **options)
        n = len(result["images"])
        seeds = ", ".join(str(result["seed"] + i) for i in range(n))
        info = tr("image_done", lang, seeds=seeds, s=result["latency_ms"] / 1000, model=result["model"])
        if result["placeholder"]:
            info += tr("image_placeholder_note", lang)
        if n > 1:
            info += tr("image_pick_hint", lang)
        gallery = [
            (path, tr("image_caption", lang, seed=result["seed"] + i)) for i, path in enumerate(result["images"])
        ]
        history = (gallery + list(history or []))[:HISTORY_LIMIT]
        paths = list(result["images"])
        return (
            gallery,
            info,
            result["seed"],
            history,
            history,
            paths,
            paths[0],
            gr.update(interactive=True),
            *rating.reset(result["output_id"]),
        )

    def select_image(paths: list[str], evt: gr.SelectData, request: gr.Request):
        path = paths[evt.index] if 0 <= evt.index < len(paths) else None
        # Another image is another rating: the reasons and comment of the previous one go.
        shown = tr("image_selected", lang_of(request), n=evt.index + 1)
        return evt.index, shown, path, *highlight(None), [], "", None

    def select_history(history: list, evt: gr.SelectData):
        item = history[evt.index] if 0 <= evt.index < len(history or []) else None
        return (item[0] if item else None), gr.update(interactive=item is not None)

    def apply_recipe(path: str | None, request: gr.Request, *, dropped: bool = False):
        """Put an image's settings back into the form: its seed, size, steps, guidance, style
        and prompts, so Generate makes it again (or a variation, after one change)."""
        lang = lang_of(request)
        if not path:
            return tuple(gr.skip() for _ in recipe_outputs)
        recipe = read_recipe(
            path, max_side=services.settings.image_max_side, max_steps=services.settings.image_max_steps
        )
        style = recipe.get("style")
        notes = []
        if style is not None and style not in image.styles:
            notes.append(tr("recipe_unknown_style", lang, style=str(style)[:60]))
            style = None
        if recipe["adjusted"]:
            fields = dict.fromkeys("width" if f == "height" else f for f in recipe["adjusted"])  # both: "size"
            notes.append(tr("recipe_adjusted", lang, fields=joined([tr(f"field_{f}", lang) for f in fields], lang)))
        model = recipe.get("model")
        if dropped and model and model != services.registry.info("image")["id"]:
            notes.append(tr("recipe_other_model", lang, model=str(model)[:80]))
        filled = [
            tr(f"field_{k}", lang)
            for k in ("prompt", "seed", "width", "steps", "guidance_scale", "style")
            if k in recipe
        ]
        gr.Info(" ".join([tr("recipe_applied", lang, fields=joined(filled, lang)), *notes]))

        def update(key: str, value: Any = None) -> Any:
            return gr.update(value=recipe[key] if value is None else value) if key in recipe else gr.skip()

        size = preset_for(recipe["width"], recipe["height"]) if "width" in recipe and "height" in recipe else gr.skip()
        return (
            update("prompt"),
            update("negative_prompt"),
            gr.update(value=style) if style else gr.skip(),
            update("steps"),
            update("guidance_scale"),
            update("width"),
            update("height"),
            update("seed"),
            size,
        )

    inputs = [ui[k] for k in INPUT_KEYS] + [ui["history_items"]]
    outputs = [
        ui["gallery"],
        ui["info"],
        ui["last_seed"],
        ui["history_items"],
        ui["history"],
        ui["result_paths"],
        ui["selected_path"],
        ui["use_settings"],
        *rating.components,
    ]
    recipe_outputs = [
        ui["prompt"],
        ui["negative_prompt"],
        ui["style"],
        ui["steps"],
        ui["guidance_scale"],
        ui["width"],
        ui["height"],
        ui["seed"],
        ui["size"],
    ]
    show_stop, hide_stop = (lambda: toggle_stop(True)), (lambda: toggle_stop(False))
    handler = user_errors(generate, outputs=len(outputs))
    for trigger in (ui["generate"].click, ui["prompt"].submit):
        trigger(
            show_stop,
            None,
            [ui["generate"], ui["stop"]],
            api_visibility="private",
            queue=False,
            js=scroll_to("#image-gallery"),
        ).then(
            handler, inputs, outputs, api_visibility="private", concurrency_id="image", show_progress_on=[ui["gallery"]]
        ).then(hide_stop, None, [ui["generate"], ui["stop"]], api_visibility="private", queue=False)

    def request_stop(request: gr.Request):
        stop_flags.stop(session_of(request))
        return hide_stop()

    ui["stop"].click(request_stop, None, [ui["generate"], ui["stop"]], api_visibility="private", queue=False)
    ui["gallery"].select(
        select_image,
        [ui["result_paths"]],
        [
            rating.item,
            rating.status,
            ui["selected_path"],
            rating.up,
            rating.down,
            rating.reasons,
            rating.comment,
            rating.saved,
        ],
        api_visibility="private",
        queue=False,
    )
    ui["history"].select(
        select_history,
        [ui["history_items"]],
        [ui["selected_path"], ui["use_settings"]],
        api_visibility="private",
        queue=False,
    )
    ui["use_settings"].click(
        # Queued (never waiting: no limit) because a toast only reaches the page from a queued event.
        user_errors(apply_recipe, outputs=len(recipe_outputs)),
        [ui["selected_path"]],
        recipe_outputs,
        api_visibility="private",
        concurrency_limit=None,
        js=scroll_to("#image-prompt", inputs=1),
    )

    def apply_dropped(path: str | None, request: gr.Request):
        return apply_recipe(path, request, dropped=True)

    ui["recipe_file"].upload(
        user_errors(apply_dropped, outputs=len(recipe_outputs)),
        [ui["recipe_file"]],
        recipe_outputs,
        api_visibility="private",
        concurrency_limit=None,
    )
    ui["random_seed"].click(lambda: -1, None, [ui["seed"]], api_visibility="private", queue=False)
    ui["reuse_seed"].click(
        reuse_seed, [ui["last_seed"], rating.item], [ui["seed"]], api_visibility="private", queue=False
    )
    presets = size_presets(services.settings.image_max_side)

    def preset_for(width: float, height: float) -> Any:
        # Moving a size slider by hand: the preset box names the preset it now matches, or none.
        return next((key for key, size in presets.items() if size == (int(width), int(height))), None)

    for slider in (ui["width"], ui["height"]):
        slider.input(preset_for, [ui["width"], ui["height"]], [ui["size"]], api_visibility="private", queue=False)
    ui["size"].change(
        lambda key: presets.get(key, (gr.skip(), gr.skip())),
        [ui["size"]],
        [ui["width"], ui["height"]],
        api_visibility="private",
        queue=False,
    )
