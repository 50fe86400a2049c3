"""Image generation: validation, seeds, batches, PNG metadata, saving.

Every saved PNG carries its own recipe — an AUTOMATIC1111-compatible ``parameters``
text chunk plus the same as JSON under ``aigc`` — so the file alone is enough to
reproduce it. Image ``i`` of a batch uses ``seed + i``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from PIL import PngImagePlugin

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput
from aigc_demo.feedback.service import FeedbackService, GeneratedOutput
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.validation import clean_text, number, resolve_seed


@dataclass(frozen=True)
class ImageDefaults:
    steps: int
    guidance_scale: float
    width: int
    height: int


def defaults_for(model_id: str) -> ImageDefaults:
    """Sensible defaults per model family (turbo models want 1-4 steps, no guidance)."""
    lowered = model_id.lower()
    if "turbo" in lowered:
        side = 1024 if "sdxl" in lowered else 512
        return ImageDefaults(steps=2, guidance_scale=0.0, width=side, height=side)
    if model_id == "packaged:tiny-sd":
        return ImageDefaults(steps=4, guidance_scale=5.0, width=256, height=256)
    return ImageDefaults(steps=25, guidance_scale=7.0, width=512, height=512)


@dataclass
class ImageParams:
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    seed: int
    num_images: int


class ImageService:
    def __init__(self, registry: ModelRegistry, feedback: FeedbackService, settings: Settings) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings
        self.out_dir = Path(settings.data_dir) / "images"

    @property
    def defaults(self) -> ImageDefaults:
        return defaults_for(self.registry.model_id("image"))

    @property
    def is_placeholder(self) -> bool:
        return self.registry.model_id("image") == "packaged:tiny-sd"

    def validate(
        self,
        prompt: object,
        *,
        negative_prompt: object = "",
        steps: object = None,
        guidance_scale: object = None,
        width: object = None,
        height: object = None,
        seed: object = -1,
        num_images: object = 1,
    ) -> ImageParams:
        s, d = self.settings, self.defaults
        params = ImageParams(
            prompt=clean_text(prompt, name="prompt", max_chars=s.max_prompt_chars),
            negative_prompt=clean_text(negative_prompt, name="negative prompt", max_chars=s.max_prompt_chars, required=False),
            steps=int(number(d.steps if steps is None else steps, name="steps", lo=1, hi=s.image_max_steps, integer=True)),
            guidance_scale=float(
                number(d.guidance_scale if guidance_scale is None else guidance_scale, name="guidance scale", lo=0, hi=30)
            ),
            width=_side(d.width if width is None else width, "width", s.image_max_side),
            height=_side(d.height if height is None else height, "height", s.image_max_side),
            seed=resolve_seed(seed),
            num_images=int(number(num_images, name="number of images", lo=1, hi=s.image_max_batch, integer=True)),
        )
        return params

    def generate(
        self,
        prompt: object,
        *,
        session_id: str = "",
        on_step: Callable[[int, int], bool | None] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        params = self.validate(prompt, **options)
        model = self.registry.get("image")
        started = time.perf_counter()
        images = model.generate(
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            steps=params.steps,
            guidance_scale=params.guidance_scale,
            width=params.width,
            height=params.height,
            seed=params.seed,
            num_images=params.num_images,
            on_step=on_step,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        model_info = self.registry.info("image")
        output = GeneratedOutput(
            tab="image",
            model=model_info,
            params={k: v for k, v in vars(params).items() if k != "prompt"},
            prompt=params.prompt,
            output={},
            latency_ms=round(latency_ms, 1),
            session_id=session_id,
        )
        files = [self._save(img, params, params.seed + i, model_info["id"], output.output_id, i) for i, img in enumerate(images)]
        output.output = {"images": files, **files[0]}
        self.feedback.register(output)
        return {
            "output_id": output.output_id,
            "image": files[0]["path"],
            "images": [f["path"] for f in files],
            "seed": params.seed,
            "model": model_info["id"],
            "placeholder": self.is_placeholder,
            "latency_ms": round(latency_ms, 1),
        }

    def _save(self, image: Any, params: ImageParams, seed: int, model_id: str, output_id: str, index: int) -> dict[str, Any]:
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        folder = self.out_dir / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{output_id}-{index}.png"
        recipe = {
            "prompt": params.prompt,
            "negative_prompt": params.negative_prompt,
            "steps": params.steps,
            "guidance_scale": params.guidance_scale,
            "width": params.width,
            "height": params.height,
            "seed": seed,
            "model": model_id,
        }
        info = PngImagePlugin.PngInfo()
        info.add_itxt("parameters", a1111_parameters(recipe))
        info.add_itxt("aigc", json.dumps(recipe, ensure_ascii=False))
        image.save(path, pnginfo=info)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"path": str(path), "sha256": digest, "width": image.width, "height": image.height, "seed": seed}


def a1111_parameters(recipe: dict[str, Any]) -> str:
    """The ``parameters`` text that A1111 / Fooocus / civitai read back."""
    lines = [recipe["prompt"]]
    if recipe["negative_prompt"]:
        lines.append(f"Negative prompt: {recipe['negative_prompt']}")
    lines.append(
        f"Steps: {recipe['steps']}, CFG scale: {recipe['guidance_scale']:g}, Seed: {recipe['seed']}, "
        f"Size: {recipe['width']}x{recipe['height']}, Model: {recipe['model']}"
    )
    return "\n".join(lines)


def _side(value: object, name: str, cap: int) -> int:
    side = int(number(value, name=name, lo=64, hi=cap, integer=True))
    if side % 8:
        raise InvalidInput(f"{name} must be a multiple of 8, got {side} (try {side - side % 8 or 64})")
    return side
