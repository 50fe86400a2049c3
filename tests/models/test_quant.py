"""Int8 weight-only layers (the CPU decode path) and the text precision choice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aigc_demo.models import quant
from aigc_demo.models.base import TextRequest
from aigc_demo.models.quant import Int8WeightLinear, quantize_int8_weights, resolve_precision
from aigc_demo.models.text_transformers import TransformersTextBackend

needs_int8 = pytest.mark.skipif(not quant.int8_supported(), reason="this CPU lacks native bf16 / the int8pack kernel")


@needs_int8
@pytest.mark.parametrize("bias", [False, True])
def test_int8_linear_matches_the_float_layer(bias):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=bias).to(torch.bfloat16)
    layer = Int8WeightLinear(linear)
    assert layer.qweight.dtype == torch.int8 and layer.scales.shape == (48,)
    with torch.inference_mode():
        for shape in [(1, 1, 64), (2, 64), (1, 3, 64)]:  # decode-sized: the int8 kernel
            x = torch.randn(*shape, dtype=torch.bfloat16)
            got, want = layer(x).float(), linear(x).float()
            assert got.shape == want.shape
            assert (got - want).abs().max() <= 0.05 * want.abs().max()
        # The kernel needs aligned, contiguous rows: a view at an odd offset and a transposed
        # view must give the same answer, not garbage or a crash.
        flat = torch.randn(2 * 64 + 3, dtype=torch.bfloat16)
        for x in (flat[3:].view(2, 64), torch.randn(64, 2, dtype=torch.bfloat16).T):
            assert (layer(x).float() - linear(x).float()).abs().max() <= 0.05 * linear(x).float().abs().max()
        x = torch.randn(1, 16, 64, dtype=torch.bfloat16)  # prompt-sized: the bf16 weight, exactly
        assert torch.equal(layer(x), linear(x))


def test_layers_the_kernel_cannot_take_stay_float():
    model = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 24), nn.Linear(24, 8))  # K=24: not a multiple of 16
    assert quantize_int8_weights(model) == 2
    assert [type(m).__name__ for m in model] == ["Int8WeightLinear", "Int8WeightLinear", "Linear"]


@needs_int8
def test_quantized_model_keeps_its_predictions(tiny_llm_dir):
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(tiny_llm_dir, dtype=torch.bfloat16).eval()
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir, dtype=torch.float32).eval()
    swapped = quantize_int8_weights(model)
    assert swapped == 2 * 7 + 1  # q k v o gate up down per layer, and the head
    assert not any(type(m) is nn.Linear for m in model.modules())
    ids = torch.randint(3, 49152, (1, 12))
    with torch.inference_mode():
        for step in range(4):  # one token at a time, like decoding
            a, b = ref(ids[:, : step + 1]).logits[0, -1].float(), model(ids[:, : step + 1]).logits[0, -1].float()
            assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99


@needs_int8
def test_backend_streams_with_int8_weights(tiny_llm_dir):
    backend = TransformersTextBackend(
        "tiny", source=tiny_llm_dir, device="cpu", dtype=torch.bfloat16, int8_weights=True, precision="int8-weights"
    )
    backend.load()
    assert isinstance(backend.model.lm_head, Int8WeightLinear)
    request = TextRequest(prompt="hello", max_new_tokens=6, min_new_tokens=6, temperature=0)
    assert "".join(backend.stream(request)) == "".join(backend.stream(request))  # greedy: deterministic


def test_precision_choice(monkeypatch):
    monkeypatch.setattr(quant, "int8_supported", lambda: True)
    assert resolve_precision("auto", "cpu", torch.float32) == (torch.bfloat16, True, "int8-weights")
    assert resolve_precision("fp32", "cpu", torch.float32) == (torch.float32, False, "fp32")
    assert resolve_precision("bf16", "cpu", torch.float32) == (torch.bfloat16, False, "bf16")
    # GPUs keep their half precision; int8 is a CPU path.
    assert resolve_precision("auto", "cuda", torch.float16) == (torch.float16, False, "fp16")
    assert resolve_precision("int8", "cuda", torch.bfloat16) == (torch.bfloat16, False, "bf16")
    monkeypatch.setattr(quant, "int8_supported", lambda: False)
    assert resolve_precision("auto", "cpu", torch.float32) == (torch.float32, False, "fp32")
    assert resolve_precision("int8", "cpu", torch.float32) == (torch.float32, False, "fp32")
