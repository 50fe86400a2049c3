"""Image studio tab: prompt, style, size preset, seed tools, per-step progress, stop,
batch gallery with per-image rating, and this session's history.

The offline profile runs an untrained placeholder pipeline; the tab says so plainly and
explains how to point ``AIGC_IMAGE_MODEL`` at a real model. A tab class (``ui/tabs/base.py``
says how they are built); the ``/generate_image`` API (``ui/api.py``) calls the same service.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.services.image import read_recipe, size_presets
from aigc_demo.ui.common import scroll_to, session_of, user_errors
from aigc_demo.ui.feedback import RatingWidget
from aigc_demo.ui.i18n import T, label, lang_of, tr
from aigc_demo.ui.tabs.base import QUICK, StoppableTab, Updates

HISTORY_LIMIT = 48
# The image parameters a recipe (the settings stored in a PNG) can fill back into the form.
RECIPE_FIELDS = ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed")


def build(services: Services, examples: list[str]) -> None:
    ImageTab(services, examples)


def reuse_seed(last: int | None, item: int | None) -> int:
    """♻️: the seed of the image on screen — image i of a batch was made with seed + i."""
    return -1 if last is None else int(last) + (item or 0)


def joined(words: list[str], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(words)


class ImageTab(StoppableTab):
    """The Image tab's components and handlers (build it inside its ``gr.Tab``)."""

    def __init__(self, services: Services, examples: list[str]) -> None:
        super().__init__()
        self.services = services
        self.image = services.image
        self.presets = size_presets(services.settings.image_max_side)
        if self.image.is_placeholder:
            gr.Markdown(T("placeholder_banner"), elem_classes=["banner"], elem_id="image-placeholder-banner")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                self._render_form(examples)
            with gr.Column(scale=6, min_width=320):
                self._render_results()
        self.last_seed = gr.State(None)
        self.history_items = gr.State([])
        self.result_paths = gr.State([])
        self.selected_path = gr.State(None)  # the image whose settings "use these settings" takes
        self._setup_events()

    # -- layout ----------------------------------------------------------------------------

    def _render_form(self, examples: list[str]) -> None:
        d = self.image.defaults
        self.prompt = gr.Textbox(label=T("prompt"), lines=3, placeholder=T("image_placeholder"), elem_id="image-prompt")
        self.negative_prompt = gr.Textbox(label=T("negative_prompt"), lines=1, placeholder=T("negative_placeholder"))
        with gr.Row():
            self.style = gr.Dropdown(
                [(label("style", n), n) for n in self.image.styles], value="None", label=T("style"), scale=2
            )
            current = next((k for k, v in self.presets.items() if v == (d.width, d.height)), None)
            self.size = gr.Dropdown(
                [(label("size", k), k) for k in self.presets],
                value=current,
                label=T("size_preset"),
                scale=2,
                elem_id="image-size",
            )
        with gr.Row():
            self.generate_btn = gr.Button(T("image_generate"), variant="primary", elem_id="image-generate", scale=3)
            self.stop_btn = gr.Button(T("stop"), variant="stop", visible=False, elem_id="image-stop", scale=3)
        self._render_parameters()
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[self.prompt], label=T("try_one"))

    def _render_parameters(self) -> None:
        s, d = self.services.settings, self.image.defaults
        with gr.Accordion(T("parameters"), open=True):
            with gr.Row():
                self.width = gr.Slider(64, s.image_max_side, value=d.width, step=8, label=T("width"))
                self.height = gr.Slider(64, s.image_max_side, value=d.height, step=8, label=T("height"))
            with gr.Row():
                self.steps = gr.Slider(1, s.image_max_steps, value=d.steps, step=1, label=T("steps"))
                self.guidance_scale = gr.Slider(0.0, 20.0, value=d.guidance_scale, step=0.5, label=T("guidance"))
            with gr.Row(equal_height=True):
                self.seed = gr.Number(value=-1, precision=0, label=T("seed_random"), scale=3)
                self.random_seed_btn = gr.Button("🎲", scale=0, min_width=48, elem_id="seed-random")
                self.reuse_seed_btn = gr.Button(T("reuse_seed"), scale=0, min_width=70, elem_id="seed-reuse")
                self.num_images = gr.Slider(1, s.image_max_batch, value=1, step=1, label=T("num_images"), scale=3)

    def _render_results(self) -> None:
        self.gallery = gr.Gallery(
            # Height follows the images: a batch of four is seen whole, not two and a scrollbar.
            label=T("gallery"),
            columns=2,
            height="auto",
            format="png",
            object_fit="contain",
            elem_id="image-gallery",
            buttons=["download", "fullscreen"],
        )
        self.info = gr.Markdown(elem_classes=["stats"], elem_id="image-info")
        self.use_settings_btn = gr.Button(T("use_settings"), size="sm", interactive=False, elem_id="image-use-settings")
        self.rating = RatingWidget(self.services.feedback)
        self.history = gr.Gallery(
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
            self.recipe_file = gr.File(
                label=T("recipe_drop"), file_types=[".png"], type="filepath", height=120, elem_id="image-recipe-file"
            )

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        outputs = [
            self.gallery,
            self.info,
            self.last_seed,
            self.history_items,
            self.history,
            self.result_paths,
            self.selected_path,
            self.use_settings_btn,
            *self.rating.components,
        ]
        generate = user_errors(self.generate, outputs=len(outputs))
        for trigger in (self.generate_btn.click, self.prompt.submit):
            trigger(self.show_stop, None, self.stop_buttons, js=scroll_to("#image-gallery"), **QUICK).then(
                generate,
                self._inputs(),
                outputs,
                api_visibility="private",
                concurrency_id="image",
                show_progress_on=[self.gallery],
            ).then(self.hide_stop, None, self.stop_buttons, **QUICK)
        self.stop_btn.click(self.request_stop, None, self.stop_buttons, **QUICK)
        self.gallery.select(
            self.select_image, [self.result_paths], [self.selected_path, *self.rating.components], **QUICK
        )
        self.history.select(
            self.select_history, [self.history_items], [self.selected_path, self.use_settings_btn], **QUICK
        )
        recipe_outputs = [*self._recipe_targets().values(), self.size]
        # Queued (never waiting: no limit) because a toast only reaches the page from a queued event.
        self.use_settings_btn.click(
            user_errors(self.apply_recipe, outputs=len(recipe_outputs)),
            [self.selected_path],
            recipe_outputs,
            api_visibility="private",
            concurrency_limit=None,
            js=scroll_to("#image-prompt", inputs=1),
        )
        self.recipe_file.upload(
            user_errors(self.apply_dropped, outputs=len(recipe_outputs)),
            [self.recipe_file],
            recipe_outputs,
            api_visibility="private",
            concurrency_limit=None,
        )
        self.random_seed_btn.click(lambda: -1, None, [self.seed], **QUICK)
        self.reuse_seed_btn.click(reuse_seed, [self.last_seed, self.rating.item], [self.seed], **QUICK)
        for slider in (self.width, self.height):
            slider.input(self.preset_for, [self.width, self.height], [self.size], **QUICK)
        self.size.change(self.size_chosen, [self.size], [self.width, self.height], **QUICK)

    def _inputs(self) -> list[Any]:
        """What ``generate`` reads, in its parameters' order."""
        return [
            self.prompt,
            self.negative_prompt,
            self.steps,
            self.guidance_scale,
            self.width,
            self.height,
            self.seed,
            self.num_images,
            self.style,
            self.history_items,
        ]

    def generate(
        self,
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
    ) -> Updates:
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
        image = self.image
        image.validate(prompt, **options)  # a bad value is reported before any work
        lang = lang_of(request)
        if not self.services.registry.is_loaded("image"):
            progress(0, desc=tr("loading_image_model", lang))
        session = session_of(request)
        with self.stop_flags.start(session) as flag:

            def on_step(step: int, total: int) -> bool:
                progress((step, total), desc=tr("step_n", lang, step=step, total=total), unit="steps")
                return not flag.is_set()

            result = image.generate(prompt, session_id=session, on_step=on_step, **options)
        gallery = [
            (path, tr("image_caption", lang, seed=result["seed"] + i)) for i, path in enumerate(result["images"])
        ]
        history = (gallery + list(history or []))[:HISTORY_LIMIT]
        paths = list(result["images"])
        return {
            self.gallery: gallery,
            self.info: _done_line(result, lang),
            self.last_seed: result["seed"],
            self.history_items: history,
            self.history: history,
            self.result_paths: paths,
            self.selected_path: paths[0],
            self.use_settings_btn: gr.update(interactive=True),
            **self.rating.cleared(result["output_id"]),
        }

    def select_image(self, paths: list[str], evt: gr.SelectData, request: gr.Request) -> Updates:
        """Another image of the batch: another rating, so the previous one's reasons and comment go."""
        rating = self.rating
        return {
            rating.item: evt.index,
            rating.status: tr("image_selected", lang_of(request), n=evt.index + 1),
            self.selected_path: paths[evt.index] if 0 <= evt.index < len(paths) else None,
            **rating.highlighted(None),
            rating.reasons: [],
            rating.comment: "",
            rating.saved: None,
        }

    def select_history(self, history: list, evt: gr.SelectData) -> Updates:
        item = history[evt.index] if 0 <= evt.index < len(history or []) else None
        return {
            self.selected_path: item[0] if item else None,
            self.use_settings_btn: gr.update(interactive=item is not None),
        }

    def _recipe_targets(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "style": self.style,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "width": self.width,
            "height": self.height,
            "seed": self.seed,
        }

    def apply_recipe(self, path: str | None, request: gr.Request, *, dropped: bool = False) -> Updates:
        """Put an image's settings back into the form: its seed, size, steps, guidance, style
        and prompts, so Generate makes it again (or a variation, after one change)."""
        if not path:
            return gr.skip()
        settings = self.services.settings
        recipe = read_recipe(path, max_side=settings.image_max_side, max_steps=settings.image_max_steps)
        lang = lang_of(request)
        notes, style = self._recipe_notes(recipe, lang, dropped=dropped)
        filled = [
            tr(f"field_{k}", lang)
            for k in ("prompt", "seed", "width", "steps", "guidance_scale", "style")
            if k in recipe
        ]
        gr.Info(" ".join([tr("recipe_applied", lang, fields=joined(filled, lang)), *notes]))
        targets = self._recipe_targets()
        updates: Updates = {targets[k]: gr.update(value=recipe[k]) for k in RECIPE_FIELDS if k in recipe}
        if style:
            updates[self.style] = gr.update(value=style)
        if "width" in recipe and "height" in recipe:
            updates[self.size] = self.preset_for(recipe["width"], recipe["height"])
        return updates or gr.skip()

    def _recipe_notes(self, recipe: dict[str, Any], lang: str, *, dropped: bool) -> tuple[list[str], Any]:
        """What the user should know about a recipe (a style or model this app lacks, values
        brought within its limits), and the style to apply (None: keep the current one)."""
        style = recipe.get("style")
        notes = []
        if style is not None and style not in self.image.styles:
            notes.append(tr("recipe_unknown_style", lang, style=str(style)[:60]))
            style = None
        if recipe["adjusted"]:
            fields = dict.fromkeys("width" if f == "height" else f for f in recipe["adjusted"])  # both: "size"
            notes.append(tr("recipe_adjusted", lang, fields=joined([tr(f"field_{f}", lang) for f in fields], lang)))
        model = recipe.get("model")
        if dropped and model and model != self.services.registry.info("image")["id"]:
            notes.append(tr("recipe_other_model", lang, model=str(model)[:80]))
        return notes, style

    def apply_dropped(self, path: str | None, request: gr.Request) -> Updates:
        return self.apply_recipe(path, request, dropped=True)

    def preset_for(self, width: float, height: float) -> Any:
        """Moving a size slider by hand: the preset box names the preset it now matches, or none."""
        return next((key for key, size in self.presets.items() if size == (int(width), int(height))), None)

    def size_chosen(self, key: str) -> Updates:
        if key not in self.presets:
            return gr.skip()
        width, height = self.presets[key]
        return {self.width: width, self.height: height}


def _done_line(result: dict[str, Any], lang: str) -> str:
    """The line under the gallery: the seeds, the time, the model and what to do next."""
    n = len(result["images"])
    seeds = ", ".join(str(result["seed"] + i) for i in range(n))
    info = tr("image_done", lang, seeds=seeds, s=result["latency_ms"] / 1000, model=result["model"])
    if result["placeholder"]:
        info += tr("image_placeholder_note", lang)
    if n > 1:
        info += tr("image_pick_hint", lang)
    return info
