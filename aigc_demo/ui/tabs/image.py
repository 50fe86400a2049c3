"""Image studio tab: prompt, negative prompt, parameters, per-step progress, gallery, rating.

The offline profile runs an untrained placeholder pipeline; the tab says so plainly and
explains how to point ``AIGC_IMAGE_MODEL`` at a real model.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.ui.common import Services, session_of, user_errors
from aigc_demo.ui.feedback import build_rating_widget

PLACEHOLDER_BANNER = (
    "⚠️ **Offline placeholder model.** No text-to-image weights can be downloaded here, so this tab runs a tiny "
    "*untrained* diffusers pipeline that makes abstract noise — the controls, seeds, progress, saving and ratings "
    "are all real. For real images set `AIGC_IMAGE_MODEL` to a Hub id (e.g. `stabilityai/sd-turbo`), a local "
    "diffusers directory, or a single-file `.safetensors` checkpoint, and restart. "
    "离线占位模型：生成的是抽象噪声；设置 `AIGC_IMAGE_MODEL` 即可使用真实模型。"
)


def build_image_tab(services: Services, examples: list[str]) -> None:
    ui = _render(services, examples)
    _wire(services, ui)


def _render(services: Services, examples: list[str]) -> dict[str, Any]:
    s, d = services.settings, services.image.defaults
    ui: dict[str, Any] = {}
    if services.image.is_placeholder:
        gr.Markdown(PLACEHOLDER_BANNER, elem_classes=["banner"], elem_id="image-placeholder-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            ui["prompt"] = gr.Textbox(label="Prompt / 提示词", lines=3, max_length=s.max_prompt_chars, placeholder="A cozy reading nook, warm light… (Ctrl+Enter to generate)", elem_id="image-prompt")
            ui["negative_prompt"] = gr.Textbox(label="Negative prompt / 反向提示词", lines=1, max_length=s.max_prompt_chars, placeholder="blurry, low quality")
            ui["generate"] = gr.Button("🎨 Generate", variant="primary", elem_id="image-generate")
            with gr.Accordion("Parameters / 参数", open=True):
                with gr.Row():
                    ui["width"] = gr.Slider(64, s.image_max_side, value=d.width, step=8, label="Width")
                    ui["height"] = gr.Slider(64, s.image_max_side, value=d.height, step=8, label="Height")
                with gr.Row():
                    ui["steps"] = gr.Slider(1, s.image_max_steps, value=d.steps, step=1, label="Steps")
                    ui["guidance_scale"] = gr.Slider(0.0, 20.0, value=d.guidance_scale, step=0.5, label="Guidance scale")
                with gr.Row():
                    ui["seed"] = gr.Number(value=-1, precision=0, label="Seed (−1 = random)")
                    ui["num_images"] = gr.Slider(1, s.image_max_batch, value=1, step=1, label="Images")
            if examples:
                gr.Examples(examples=[[e] for e in examples], inputs=[ui["prompt"]], label="Try one")
        with gr.Column(scale=6, min_width=320):
            ui["gallery"] = gr.Gallery(label="Result / 结果", columns=2, height=420, format="png", object_fit="contain", elem_id="image-gallery")
            ui["info"] = gr.Markdown(elem_classes=["stats"])
            ui["rating"] = build_rating_widget(services.feedback)
    return ui


def _wire(services: Services, ui: dict[str, Any]) -> None:
    rating = ui["rating"]
    image = services.image

    def generate(prompt, negative_prompt, steps, guidance_scale, width, height, seed, num_images, request: gr.Request, progress=gr.Progress()):
        options = dict(
            negative_prompt=negative_prompt,
            steps=steps,
            guidance_scale=guidance_scale,
            width=width,
            height=height,
            seed=seed,
            num_images=num_images,
        )
        image.validate(prompt, **options)  # a bad value is reported before any work
        if not services.registry.is_loaded("image"):
            progress(0, desc="Loading the image model (first use only)…")

        def on_step(step: int, total: int) -> None:
            progress((step, total), desc=f"Step {step}/{total}", unit="steps")

        result = image.generate(prompt, session_id=session_of(request), on_step=on_step, **options)
        seeds = ", ".join(str(result["seed"] + i) for i in range(len(result["images"])))
        info = f"✅ seed **{seeds}** · {result['latency_ms'] / 1000:.1f}s · `{result['model']}`"
        if result["placeholder"]:
            info += " · placeholder model (abstract noise)"
        gallery = [(path, f"seed {result['seed'] + i}") for i, path in enumerate(result["images"])]
        return gallery, info, *rating.reset(result["output_id"])

    inputs = [ui[k] for k in ("prompt", "negative_prompt", "steps", "guidance_scale", "width", "height", "seed", "num_images")]
    outputs = [ui["gallery"], ui["info"], *rating.components]
    for trigger in (ui["generate"].click, ui["prompt"].submit):
        trigger(user_errors(generate, outputs=len(outputs)), inputs, outputs, api_visibility="private", concurrency_id="image")

    d = image.defaults

    def generate_image(
        prompt: str,
        negative_prompt: str = "",
        steps: int = d.steps,
        guidance_scale: float = d.guidance_scale,
        width: int = d.width,
        height: int = d.height,
        seed: int = -1,
        num_images: int = 1,
        request: gr.Request = None,
    ) -> dict:
        """Generate images; returns output_id, image (file), images (files), seed and model."""
        from gradio.data_classes import FileData

        result = image.generate(
            prompt,
            negative_prompt=negative_prompt,
            steps=steps,
            guidance_scale=guidance_scale,
            width=width,
            height=height,
            seed=seed,
            num_images=num_images,
            session_id=session_of(request),
        )
        files = [FileData(path=p, orig_name=p.rsplit("/", 1)[-1], mime_type="image/png").model_dump() for p in result["images"]]
        return {**result, "image": files[0], "images": files}

    gr.api(user_errors(generate_image), api_name="generate_image", concurrency_id="image")
