"""Int8 weight-only linear layers for CPU decoding, and the text precision choice.

Decoding one token reads every weight once, so on a CPU its speed is set by memory
bandwidth: fp32 SmolLM2-135M decoded ~21 tokens/s on two cores, bf16 ~36, int8 weights
with bf16 activations ~62 (bench/RESULTS.md, "Text precision on CPU"). Perplexity on the
support KB stays at fp32's (21.9), whereas torch's dynamic int8 quantisation, which also
quantises activations, raised it to 91 — small models have activation outliers.

The kernel is core PyTorch's ``aten._weight_int8pack_mm`` (the one gpt-fast uses): int8
weights, one bf16 scale per output channel. It wins only for a few rows at a time;
for a prompt (prefill, compute-bound) oneDNN's bf16 GEMM is ~3x faster at 200 rows. So
each layer keeps its bf16 weight too (+50 % weight memory, ~270 MB for SmolLM2) and picks
the kernel by the number of rows: prompt processing stays at bf16 speed (time to first
token ~110 ms for 200 tokens instead of ~220) and decoding gets the int8 speed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

import torch
from torch import nn

from aigc_demo.models import compute

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]

# The AVX-512 kernel steps through K 16 values at a time with *aligned* vector loads and no
# bounds checks: K must be a multiple of 16 and each activation row 32-byte aligned, or it
# reads garbage or faults (seen here: NaNs at K=8, a segfault at K=24). Layers that do not
# fit keep the plain bf16 path, and misaligned activations are copied first.
K_MULTIPLE = 16
ALIGN_BYTES = 32

# Measured on 2 AVX-512 cores (576x1536 layer): int8pack 20/38/68 us at 1/4/8 rows, bf16
# GEMM 58/58/63 us; at 16 rows bf16 is 1.8x faster.
INT8_MAX_ROWS = 4


class Int8WeightLinear(nn.Module):
    """A drop-in ``nn.Linear`` (inference only) with per-channel symmetric int8 weights."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        weight = linear.weight.detach()
        w = weight.float()
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)
        self.register_buffer("qweight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scale.to(dtype))
        # Shared with the original module (and with tied embeddings), not copied.
        self.weight = weight if weight.dtype == dtype else weight.to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > INT8_MAX_ROWS or x.dtype != self.scales.dtype:
            return nn.functional.linear(x, self.weight, self.bias)
        x2 = x.reshape(rows, self.in_features)
        if not x2.is_contiguous() or x2.data_ptr() % ALIGN_BYTES:
            x2 = x2.clone(memory_format=torch.contiguous_format)  # a fresh, aligned buffer
        y = torch.ops.aten._weight_int8pack_mm(x2, self.qweight, self.scales)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def quantize_int8_weights(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Cast ``model`` to ``dtype`` and swap every ``nn.Linear`` for :class:`Int8WeightLinear`.

    Returns how many layers were swapped (those whose input size the kernel cannot take
    stay as they are). The model must be on the CPU.
    """
    model.to(dtype)
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and child.in_features % K_MULTIPLE == 0:
                setattr(parent, name, Int8WeightLinear(child, dtype))
                swapped += 1
    return swapped


@functools.lru_cache(maxsize=1)
def int8_supported() -> bool:
    """Whether this CPU runs the int8 path fast: needs the kernel and native bf16."""
    return compute.run(_probe_int8)


def _probe_int8() -> bool:
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        x = torch.ones(1, 64, dtype=torch.bfloat16)
        q = torch.ones(8, 64, dtype=torch.int8)
        out = torch.ops.aten._weight_int8pack_mm(x, q, torch.full((8,), 0.5, dtype=torch.bfloat16))
        return bool(torch.equal(out.float(), torch.full((1, 8), 32.0)))
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def resolve_precision(
    precision: Precision, device: str, accelerator_dtype: torch.dtype
) -> tuple[torch.dtype, bool, str]:
    """``(load dtype, int8 weights?, label)`` for a text model on ``device``.

    ``auto``: the accelerator's half precision on a GPU; on a CPU int8 weights where
    :func:`int8_supported`, else fp32 (bf16 without native support is emulated and slow).
    """
    if device != "cpu":
        if precision in ("auto", "int8"):
            if precision == "int8":
                log.warning("AIGC_TEXT_PRECISION=int8 is a CPU path; using %s on %s", accelerator_dtype, device)
            return accelerator_dtype, False, _label(accelerator_dtype)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        return dtype, False, _label(dtype)
    if precision == "auto":
        precision = "int8" if int8_supported() else "fp32"
    if precision == "int8":
        if not int8_supported():
            log.warning("int8 weights need a CPU with native bf16 (AVX512-BF16/AMX); using fp32")
            return torch.float32, False, "fp32"
        return torch.bfloat16, True, "int8-weights"
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return dtype, False, _label(dtype)


def _label(dtype: Any) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
