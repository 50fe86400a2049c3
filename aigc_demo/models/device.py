"""Device and dtype choice, GPU memory recovery and the ZeroGPU shim, in one place.

On a Hugging Face ZeroGPU Space a GPU is attached only inside functions decorated with
``spaces.GPU``; :func:`zero_gpu` applies that decorator when the ``spaces`` package is
present and the Space runs on ZeroGPU, and is a no-op everywhere else, so the same code
runs on a laptop, a GPU box and a Space.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aigc_demo.config import accelerator_possible

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@functools.cache
def pick_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    if not accelerator_possible():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    import torch

    # Half precision on accelerators; fp32 on CPU, where bf16 matmuls are often slower
    # without AMX and fp16 is unsupported for many ops.
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def release_gpu_memory() -> None:
    """Free what a failed request left behind so the next one can run."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def on_zero_gpu() -> bool:
    return (
        os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")
        and importlib.util.find_spec("spaces") is not None
    )


def zero_gpu(*, duration: int | Callable[..., int] = 60) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``spaces.GPU(duration=...)`` on ZeroGPU; elsewhere the function is returned unchanged.

    ``duration`` may be a function of the call's arguments (an estimate per request), as
    ``spaces.GPU`` accepts.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not on_zero_gpu():
            return fn
        import spaces

        log.info("ZeroGPU: %s runs with spaces.GPU", fn.__qualname__)
        return functools.wraps(fn)(spaces.GPU(duration=duration)(fn))

    return decorate
