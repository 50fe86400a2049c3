"""Image generation: validation, seeds, batches, PNG metadata, saving.

Every saved PNG carries its own recipe — an AUTOMATIC1111-compatible ``parameters``
text chunk plus the same as JSON under ``aigc`` — so the file alone is enough to
reproduce it. Image ``i`` of a batch uses ``seed + i``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from aigc_demo.config import ASSETS_DIR, Settings
from aigc_demo.errors import AigcError, InvalidInput, Items, Term
from aigc_demo.feedback.schema import GeneratedOutput
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.device import is_out_of_memory, release_gpu_memory, zero_gpu
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.validation import MAX_SEED, clean_text, number, resolve_seed
from aigc_demo.variants import apply, assign

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """A1111 ``styles.csv`` row: ``{prompt}`` in ``prompt`` is the user's prompt."""

    name: str
    prompt: str
    negative_prompt: str

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        styled = self.prompt.replace("{prompt}", prompt) if "{prompt}" in self.prompt else f"{prompt}, {self.prompt}"
        negatives = ", ".join(n for n in (negative, self.negative_prompt) if n)
        return styled.strip(", "), negatives


def load_styles(path: Path) -> dict[str, Style]:
    """Styles from an A1111-format CSV (name, prompt, negative_prompt); a bad file means no styles."""
    styles = {"None": Style("None", "{prompt}", "")}
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                name = (row.get("name") or "").strip()
                if name:
                    styles[name] = Style(name, row.get("prompt") or "{prompt}", row.get("negative_prompt") or "")
    except (OSError, csv.Error) as exc:
        log.warning("no image styles from %s: %s", path, exc)
    return styles


SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "Square 256": (256, 256),
    "Square 512": (512, 512),
    "Square 768": (768, 768),
    "Square 1024": (1024, 1024),
    "Portrait 512×768": (512, 768),
    "Landscape 768×512": (768, 512),
    "Wide 1024×576": (1024, 576),
    "Tall 576×1024": (576, 1024),
}


def size_presets(max_side: int) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in SIZE_PRESETS.items() if max(v) <= max_side}


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
    prompt: str  # as the model sees it (style applied)
    negative_prompt: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    seed: int
    num_images: int
    style: str = "None"
    user_prompt: str = ""
    user_negative_prompt: str = ""


class ImageService:
    def __init__(self, registry: ModelRegistry, feedback: FeedbackService, settings: Settings) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings
        self.out_dir = Path(settings.data_dir) / "images"
        self.styles = load_styles(ASSETS_DIR / "styles.csv")

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
        style: object = "None",
    ) -> ImageParams:
        s, d = self.settings, self.defaults
        style_name = str(style or "None")
        if style_name not in self.styles:
            raise InvalidInput("unknown_style", name=repr(style_name[:40]), choices=Items(self.styles))
        user_prompt = clean_text(prompt, name="prompt", max_chars=s.max_prompt_chars)
        user_negative = clean_text(
            negative_prompt, name="negative prompt", max_chars=s.max_prompt_chars, required=False
        )
        styled, styled_negative = self.styles[style_name].apply(user_prompt, user_negative)
        params = ImageParams(
            prompt=styled,
            negative_prompt=styled_negative,
            style=style_name,
            user_prompt=user_prompt,
            user_negative_prompt=user_negative,
            steps=int(
                number(d.steps if steps is None else steps, name="steps", lo=1, hi=s.image_max_steps, integer=True)
            ),
            guidance_scale=float(
                number(
                    d.guidance_scale if guidance_scale is None else guidance_scale, name="guidance scale", lo=0, hi=30
                )
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
        tab: str = "image",
        **options: Any,
    ) -> dict[str, Any]:
        # An Arena contestant's image keeps the contestant's settings: no A/B variant applies.
        variant = assign(self.settings.variant_table, "image", session_id) if tab == "image" else None
        options = apply(variant, options, ("steps", "guidance_scale", "style", "negative_prompt"))
        params = self.validate(prompt, **options)
        model = self.registry.get("image")
        started = time.perf_counter()
        images = self._run(model, params, on_step)
        latency_ms = (time.perf_counter() - started) * 1000
        model_info = self.registry.info("image")
        output = GeneratedOutput(
            tab=tab,
            model=model_info,
            params={k: v for k, v in vars(params).items() if k not in ("prompt", "user_prompt", "user_negative_prompt")}
            | {"model_prompt": params.prompt},
            prompt=params.user_prompt,
            output={},
            latency_ms=round(latency_ms, 1),
            session_id=session_id,
            variant=variant.name if variant else None,
        )
        files: list[dict[str, Any]] = []
        try:
            for i, img in enumerate(images):
                files.append(self._save(img, params, params.seed + i, model_info["id"], output.output_id, i))
        except AigcError:
            for saved in files:  # all or nothing: a half-saved batch is not an output
                with contextlib.suppress(OSError):
                    Path(saved["path"]).unlink(missing_ok=True)
            raise
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

    def _run(self, model: Any, params: ImageParams, on_step: Callable[[int, int], bool | None] | None) -> list[Any]:
        """Run the model; turn a CUDA out-of-memory error into advice and free the memory."""
        try:
            return self._call_model(model, params, on_step)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            release_gpu_memory()
            smaller = _smaller_side(max(params.width, params.height))
            raise AigcError(
                "gpu_out_of_memory", width=params.width, height=params.height, n=params.num_images, smaller=smaller
            ) from None

    @zero_gpu(duration=lambda self, model, params, on_step: estimate_seconds(params))
    def _call_model(self, model: Any, params: ImageParams, on_step: Any) -> list[Any]:
        return model.generate(
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

    def _save(
        self, image: Any, params: ImageParams, seed: int, model_id: str, output_id: str, index: int
    ) -> dict[str, Any]:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        folder = self.out_dir / day
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
            "style": params.style,
            # What the user typed, before the style was applied: "use these settings" needs it.
            "user_prompt": params.user_prompt,
            "user_negative_prompt": params.user_negative_prompt,
        }
        info = PngImagePlugin.PngInfo()
        info.add_itxt("parameters", a1111_parameters(recipe))
        info.add_itxt("aigc", json.dumps(recipe, ensure_ascii=False))
        # Written beside its final name and renamed into place, so a full disk (or a crash)
        # never leaves a truncated PNG that the gallery, the feed or a later export would show.
        partial = path.with_suffix(".part")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                image.save(handle, format="PNG", pnginfo=info)
            partial.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # the folder itself may be what is broken
                partial.unlink(missing_ok=True)
            log.error("could not save %s: %s", path.name, exc.strerror or exc)
            self.feedback.note_failure("images", str(exc.strerror or exc))
            raise AigcError("image_not_saved") from None
        self.feedback.note_success("images")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"path": str(path), "sha256": digest, "width": image.width, "height": image.height, "seed": seed}


RECIPE_KEYS = ("prompt", "negative_prompt", "style", "steps", "guidance_scale", "width", "height", "seed")
_A1111_FIELD = re.compile(r'\s*([A-Za-z][\w ]*?):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)')


def read_recipe(path: str | Path, *, max_side: int, max_steps: int) -> dict[str, Any]:
    """The settings an image was made with, from its PNG text chunks: ours (``aigc`` JSON) or
    AUTOMATIC1111's ``parameters`` (also written by Fooocus, ComfyUI exporters, civitai).

    Returns the keys of :data:`RECIPE_KEYS` that the file holds, plus ``source`` ("aigc_demo"
    or "a1111"), ``model`` when named, and ``adjusted``: the fields brought inside this app's
    limits (a 1024² recipe on a 512-pixel server). Only the chunks before the pixels are read.
    """
    try:
        with Image.open(path) as img:
            chunks = dict(getattr(img, "text", None) or img.info or {})
    except (OSError, ValueError, Image.DecompressionBombError):
        raise InvalidInput("not_an_image") from None
    recipe: dict[str, Any]
    if isinstance(chunks.get("aigc"), str):
        try:
            ours = json.loads(chunks["aigc"])
        except ValueError:
            ours = None
        if isinstance(ours, dict):
            recipe = {
                "prompt": ours.get("user_prompt", ours.get("prompt")),
                "negative_prompt": ours.get("user_negative_prompt", ours.get("negative_prompt")),
                **{k: ours.get(k) for k in RECIPE_KEYS[2:]},
                "model": ours.get("model"),
                "source": "aigc_demo",
            }
            return _within_limits(recipe, max_side=max_side, max_steps=max_steps)
    text = chunks.get("parameters")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("no_recipe")
    return _within_limits(parse_a1111(text[:20_000]), max_side=max_side, max_steps=max_steps)


def parse_a1111(text: str) -> dict[str, Any]:
    """AUTOMATIC1111's ``parameters`` text: prompt lines, ``Negative prompt: …``, then one
    ``Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x768, Model: …`` line."""
    lines = text.strip().splitlines()
    settings_at = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].lstrip().startswith("Steps:")), len(lines))
    negative_at = next((i for i in range(settings_at) if lines[i].startswith("Negative prompt:")), settings_at)
    recipe: dict[str, Any] = {
        "prompt": "\n".join(lines[:negative_at]).strip(),
        "negative_prompt": "\n".join(lines[negative_at:settings_at]).removeprefix("Negative prompt:").strip(),
        "source": "a1111",
    }
    fields = {
        m.group(1).strip(): m.group(2).strip().strip('"') for m in _A1111_FIELD.finditer(" ".join(lines[settings_at:]))
    }
    for key, name, kind in (("steps", "Steps", int), ("guidance_scale", "CFG scale", float), ("seed", "Seed", int)):
        try:
            recipe[key] = kind(float(fields[name])) if kind is int else kind(fields[name])
        except (KeyError, ValueError):
            pass
    size = re.fullmatch(r"(\d{1,5})x(\d{1,5})", fields.get("Size", ""))
    if size:
        recipe["width"], recipe["height"] = int(size.group(1)), int(size.group(2))
    if fields.get("Model"):
        recipe["model"] = fields["Model"][:200]
    if fields.get("Styles"):
        recipe["style"] = fields["Styles"].split(",")[0].strip()
    return recipe


def _within_limits(recipe: dict[str, Any], *, max_side: int, max_steps: int) -> dict[str, Any]:
    out = {k: v for k, v in recipe.items() if v is not None}
    adjusted: list[str] = []
    for key in ("width", "height"):
        if isinstance(out.get(key), (int, float)):
            side = max(64, min(max_side, int(out[key]) // 8 * 8))
            if side != out[key]:
                adjusted.append(key)
            out[key] = side
    if isinstance(out.get("steps"), (int, float)):
        steps = max(1, min(max_steps, int(out["steps"])))
        if steps != out["steps"]:
            adjusted.append("steps")
        out["steps"] = steps
    if isinstance(out.get("guidance_scale"), (int, float)):
        out["guidance_scale"] = max(0.0, min(20.0, float(out["guidance_scale"])))
    if isinstance(out.get("seed"), (int, float)) and not 0 <= int(out["seed"]) <= MAX_SEED:
        out.pop("seed")
        adjusted.append("seed")
    for key in ("prompt", "negative_prompt"):
        if key in out:
            out[key] = str(out[key])[:4000]
    out["adjusted"] = adjusted
    return out


def estimate_seconds(params: ImageParams) -> int:
    """A ZeroGPU duration request: ~0.05 s per step per 512² image on an H100-class GPU, with headroom."""
    megapixels = params.width * params.height / (512 * 512)
    return int(min(120, 10 + params.steps * params.num_images * megapixels * 0.5))


def _smaller_side(side: int) -> int:
    return max(256, (int(side * 0.75) // 64) * 64)


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
        raise InvalidInput("size_not_multiple_of_8", name=Term(name), got=side, try_=side - side % 8 or 64)
    return side
