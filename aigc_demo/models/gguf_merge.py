"""Write a trained adapter into a copy of its base GGUF, so llama.cpp serves it at full speed.

llama.cpp's own converter (``convert_hf_to_gguf.py``) is not part of any wheel, and the base
GGUF already holds everything llama.cpp needs — the tokenizer, the chat template, every
hyper-parameter. So the copy keeps all of the base's metadata and tensors and replaces only
the tensors the adapter changed: each is de-quantized, gets ``merged − base`` added (computed
in float32 by ``models/lora.merged_deltas``) and is stored as F16: a LoRA change is small
(~1e-3 per weight), and re-quantizing to Q8_0 measured an error of 0.01 on SmolLM2's
``ffn_down`` — as large as the change itself; F16 keeps it to ~5e-4 of each weight.
Weight names map through gguf-py's own table (``model.layers.3.mlp.down_proj.weight`` → ``blk.3.ffn_down.weight``).

Only un-permuted weights may be merged this way: LLaMA-family GGUFs store ``q_proj`` and
``k_proj`` rows permuted for rotary embeddings, so the trainer does not target them
(``models/lora.TARGET_MODULES``); any other unmapped or mismatched weight is an error, never
silently dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

STORED_AS = "F16"


def _arch(reader: Any) -> Any:
    import gguf

    field = reader.fields[gguf.Keys.General.ARCHITECTURE]
    name = bytes(field.parts[field.data[0]]).decode()
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(name)
    if arch is None:
        raise ValueError(f"unknown GGUF architecture {name!r}")
    return name, arch


def _blocks(reader: Any, arch_name: str) -> int:
    field = reader.fields.get(f"{arch_name}.block_count")
    return int(field.parts[field.data[0]][0]) if field is not None else 0


def gguf_names(reader: Any, hf_names: list[str]) -> dict[str, str]:
    """``{hf name: gguf tensor name}``; raises for a weight the base GGUF does not hold."""
    import gguf

    arch_name, arch = _arch(reader)
    table = gguf.get_tensor_name_map(arch, _blocks(reader, arch_name))
    present = {t.name for t in reader.tensors}
    out = {}
    for hf in hf_names:
        name = table.get_name(hf, try_suffixes=(".weight", ".bias"))
        if name is None or name not in present:
            raise ValueError(f"the adapter changes {hf}, which the base GGUF has no tensor for")
        out[hf] = name
    return out


def merge_into_gguf(base: Path, deltas: dict[str, np.ndarray], out: Path) -> Path:
    """A copy of ``base`` with ``deltas`` (by HF weight name) added; written atomically."""
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch_name, _ = _arch(reader)
    by_gguf = {g: deltas[hf] for hf, g in gguf_names(reader, list(deltas)).items()}
    qtype = gguf.GGMLQuantizationType[STORED_AS]
    tmp = out.with_suffix(out.suffix + ".part")
    writer = gguf.GGUFWriter(str(tmp), arch_name, endianess=reader.endianess)
    for field in reader.fields.values():  # every key of the base, as gguf-py's own copier does
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    tensors = []
    for tensor in reader.tensors:
        data, dtype = tensor.data, tensor.tensor_type
        delta = by_gguf.get(tensor.name)
        if delta is not None:
            weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            if weight.shape != delta.shape:
                raise ValueError(f"{tensor.name}: base {weight.shape} vs adapter {delta.shape}")
            data, dtype = (weight + delta).astype(np.float16), qtype
        tensors.append((tensor.name, data, dtype))
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _name, data, _dtype in tensors:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    os.replace(tmp, out)
    return out
