"""Device and dtype choice, kept in one place so every backend agrees."""

from __future__ import annotations

import torch


def pick_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    # Half precision on accelerators; fp32 on CPU, where bf16 matmuls are often slower
    # without AMX and fp16 is unsupported for many ops.
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32
