"""Text-to-image through diffusers' ``AutoPipelineForText2Image``.

One small backend class for every image model: a Hub id (SD-Turbo on the gpu
profile), a local diffusers directory, a single-file ``.safetensors`` checkpoint, or
the offline placeholder pipeline built by ``tiny_image.py``. ``generate`` takes the
same argument names whatever the model, reports per-step progress through
``on_step`` and can be cancelled from it (return False).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, ModelLoadError
from aigc_demo.models import compute, packaged
from aigc_demo.models.base import ImageBackend
from aigc_demo.models.device import pick_device, pick_dtype


class Cancelled(AigcError):
    """The user stopped the generation."""


class DiffusersImageBackend(ImageBackend):
    backend = "diffusers"

    def __init__(
        self, model_id: str, *, source: str | Path, device: str, dtype: Any, placeholder: bool = False
    ) -> None:
        self.model_id = model_id
        self.source = str(source)
        self.device = device
        self.dtype = dtype
        self.placeholder = placeholder
        self.pipe: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> DiffusersImageBackend:
        device = pick_device(settings.device)
        source = packaged.source(target, settings.cache_path)
        return cls(
            model_id, source=source, device=device, dtype=pick_dtype(device), placeholder=target == "packaged:tiny-sd"
        )

    def load(self) -> None:
        from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline

        try:
            if self.source.endswith((".safetensors", ".ckpt")):
                pipe = StableDiffusionPipeline.from_single_file(self.source, dtype=self.dtype)
            else:
                pipe = AutoPipelineForText2Image.from_pretrained(self.source, dtype=self.dtype)
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the image model {self.model_id!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                "Set AIGC_IMAGE_MODEL to a Hub id (e.g. stabilityai/sd-turbo, needs network), "
                "a local diffusers directory, or a single-file .safetensors checkpoint."
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)

    def generate(
        self,
        *,
        prompt: str,
        negative_prompt: str = "",
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        seed: int,
        num_images: int = 1,
        on_step: Callable[[int, int], bool] | None = None,
    ) -> list[Any]:
        """Return PIL images; image ``i`` uses seed ``seed + i`` so each is reproducible alone."""
        import torch

        generator_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(generator_device).manual_seed(seed + i) for i in range(num_images)]

        def callback(pipe, step, timestep, kwargs):
            if on_step is not None and on_step(step + 1, steps) is False:
                raise Cancelled("Generation stopped.")
            return kwargs

        if self.device == "cuda":
            # Big images: decode the VAE in tiles; batches: one image at a time. Both cut
            # peak memory at a small speed cost, and only where it is needed.
            vae = self.pipe.vae
            vae.enable_tiling() if width * height > 1024 * 1024 else vae.disable_tiling()
            vae.enable_slicing() if num_images > 1 else vae.disable_slicing()

        def denoise() -> Any:
            with torch.inference_mode():
                return self.pipe(
                    prompt=[prompt] * num_images,
                    negative_prompt=[negative_prompt] * num_images if negative_prompt else None,
                    num_inference_steps=steps,
                    guidance_scale=guidance_scale,
                    width=width,
                    height=height,
                    generator=generators,
                    callback_on_step_end=callback,
                )

        # On a CPU, on the compute thread (models/compute.py); a GPU queues its own work.
        result = compute.run(denoise) if self.device == "cpu" else denoise()
        return list(result.images)
