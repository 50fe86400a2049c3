"""An adapter written back into its base GGUF: the changed tensors hold base + delta, everything
else is the base's byte for byte, and llama.cpp loads and runs the result."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from aigc_demo.models import packaged
from aigc_demo.models.gguf_merge import merge_into_gguf

pytestmark = pytest.mark.slow


def test_a_delta_lands_in_its_tensor_and_nothing_else_changes(tmp_path):
    import gguf

    base = packaged.smollm2_gguf()
    reader = gguf.GGUFReader(str(base))
    down = next(t for t in reader.tensors if t.name == "blk.0.ffn_down.weight")
    weight = gguf.quants.dequantize(down.data, down.tensor_type)
    delta = (np.random.default_rng(0).standard_normal(weight.shape) * 1e-3).astype(np.float32)
    out = merge_into_gguf(base, {"model.layers.0.mlp.down_proj.weight": delta}, tmp_path / "merged.gguf")

    merged = gguf.GGUFReader(str(out))
    changed = next(t for t in merged.tensors if t.name == "blk.0.ffn_down.weight")
    assert changed.tensor_type == gguf.GGMLQuantizationType.F16
    got = gguf.quants.dequantize(changed.data, changed.tensor_type)
    assert np.abs(got - (weight + delta)).max() < 2e-3  # F16 keeps a 1e-3 change
    same = {t.name: t for t in reader.tensors}
    for t in merged.tensors:
        if t.name != "blk.0.ffn_down.weight":
            assert t.tensor_type == same[t.name].tensor_type and np.array_equal(t.data, same[t.name].data), t.name
    assert merged.fields["tokenizer.chat_template"].contents() == reader.fields["tokenizer.chat_template"].contents()


def test_a_weight_the_gguf_lacks_is_an_error_not_dropped(tmp_path):
    with pytest.raises(ValueError, match="no tensor"):
        merge_into_gguf(
            packaged.smollm2_gguf(), {"model.layers.99.mlp.down_proj.weight": np.zeros((1,))}, tmp_path / "x"
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="LLAMA.CPP is not installed")
def test_llama_cpp_runs_the_merged_model(tmp_path):
    from llama_cpp import Llama

    out = merge_into_gguf(packaged.smollm2_gguf(), {}, tmp_path / "same.gguf")
    llm = Llama(str(out), n_ctx=128, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": "Say hi"}], max_tokens=8, temperature=0)
    assert reply["choices"][0]["message"]["content"].strip()
