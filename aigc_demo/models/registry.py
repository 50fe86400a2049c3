"""Engines by name, model ids to engines, and the per-process cache of loaded models.

Each kind has its own table of engines (like llm's ``register_models``); a model id picks
its engine by prefix, so one dropdown can mix engines::

    openai:qwen2.5-7b-instruct         -> the OpenAI-compatible engine (a remote server)
    llamacpp:packaged:smollm2-...      -> llama.cpp, explicitly  (gguf:/path/model.gguf too)
    transformers:packaged:smollm2-...  -> transformers, explicitly
    packaged:smollm2-135m-instruct     -> no prefix: the kind's default engine
    Qwen/Qwen2.5-1.5B-Instruct         -> no prefix: the kind's default engine

The text default is ``AIGC_TEXT_BACKEND``: ``auto`` runs GGUF models (packaged or a
``.gguf`` path) with llama.cpp when it is installed and works on this CPU, and the rest
with transformers. A fourth engine is one class (with a ``from_settings`` constructor, see
models/base.py) and one ``register(...)`` line below. An unknown prefix or engine fails at start with the
setting's name (:func:`check_settings`).

:class:`ModelRegistry` loads each model lazily on first use, once per process, under a
lock, so concurrent first requests wait for one load instead of starting several. A model
that fails to load raises :class:`ModelLoadError` for its own tab only; the next request
tries again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, overload

from aigc_demo.config import Settings
from aigc_demo.errors import ModelLoadError, SettingsError, Term
from aigc_demo.models import compute, packaged, trained
from aigc_demo.models.base import Embedder, ImageBackend, TextBackend
from aigc_demo.models.device import pick_device
from aigc_demo.models.embed import SentenceTransformerEmbedder
from aigc_demo.models.embed_e5 import E5Embedder
from aigc_demo.models.image import DiffusersImageBackend
from aigc_demo.models.text_llamacpp import LlamaCppTextBackend
from aigc_demo.models.text_openai import OpenAITextBackend
from aigc_demo.models.text_transformers import TransformersTextBackend

log = logging.getLogger(__name__)

Kind = Literal["text", "image", "embed"]
KINDS: tuple[Kind, ...] = ("text", "image", "embed")
B = TypeVar("B")
# (settings, model id as configured, the id without its engine prefix) -> an unloaded backend
Factory = Callable[[Settings, str, str], B]

TEXT_ENGINES: dict[str, Factory[TextBackend]] = {}
IMAGE_ENGINES: dict[str, Factory[ImageBackend]] = {}
EMBED_ENGINES: dict[str, Factory[Embedder]] = {}
ENGINES: dict[Kind, dict[str, Any]] = {"text": TEXT_ENGINES, "image": IMAGE_ENGINES, "embed": EMBED_ENGINES}
DEFAULT_ENGINE: dict[Kind, str] = {"image": "diffusers", "embed": "sentence-transformers"}  # text: AIGC_TEXT_BACKEND
ALIASES = {"gguf": "llamacpp"}  # gguf:/path/model.gguf
NOT_ENGINES = {"packaged", "trained"}  # a prefix that is part of the model id itself


@overload
def register(kind: Literal["text"], name: str, factory: Factory[TextBackend]) -> None: ...
@overload
def register(kind: Literal["image"], name: str, factory: Factory[ImageBackend]) -> None: ...
@overload
def register(kind: Literal["embed"], name: str, factory: Factory[Embedder]) -> None: ...
def register(kind: Kind, name: str, factory: Any) -> None:
    ENGINES[kind][name] = factory


register("text", "transformers", TransformersTextBackend.from_settings)
register("text", "llamacpp", LlamaCppTextBackend.from_settings)
register("text", "openai", OpenAITextBackend.from_settings)
register("image", "diffusers", DiffusersImageBackend.from_settings)
register("embed", "sentence-transformers", SentenceTransformerEmbedder.from_settings)
register("embed", "e5", E5Embedder.from_settings)


def backend_factory(kind: Kind, name: str) -> Factory[Any]:
    try:
        return cast(Factory[Any], ENGINES[kind][name])
    except KeyError:
        known = ", ".join(sorted(ENGINES.get(kind, {}))) or "none"
        raise ModelLoadError(f"Unknown backend: {name} (known {kind} backends: {known})") from None


def split_engine(kind: Kind, model_id: str) -> tuple[str | None, str]:
    """``"openai:qwen"`` -> ("openai", "qwen"); an id without an engine prefix -> (None, id).

    Raises ValueError for a ``word:`` prefix that names no engine (a typo must not become a
    Hub id that fails later, on a tester's first request).
    """
    prefix, sep, rest = model_id.partition(":")
    if not sep or prefix in NOT_ENGINES or len(prefix) == 1:  # C:\\models on Windows
        return None, model_id
    name = ALIASES.get(prefix, prefix)
    if name in ENGINES[kind]:
        return name, rest
    if "/" in prefix or "\\" in prefix or prefix.startswith("."):  # a path with a colon in it
        return None, model_id
    known = sorted({*ENGINES[kind], *(a for a, e in ALIASES.items() if e in ENGINES[kind]), *NOT_ENGINES})
    raise ValueError(f"unknown engine prefix {prefix!r} (known: {', '.join(known)})")


# Loads a GGUF as the engine does and decodes a 17-token prompt: a library that only starts
# can still die on its first real prompt (an AMX build on a Xeon did, in the server).
_PROBE = """
import sys, llama_cpp
from llama_cpp import _internals
from aigc_demo.models.text_llamacpp import model_params
llama_cpp.llama_backend_init()
print(llama_cpp.llama_print_system_info().decode())
if len(sys.argv) > 1:
    model = _internals.LlamaModel(path_model=sys.argv[1], params=model_params(llama_cpp), verbose=False)
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = 64, 32, 32
    ctx = _internals.LlamaContext(model=model, params=cparams, verbose=False)
    batch = _internals.LlamaBatch(n_tokens=32, embd=0, n_seq_max=1, verbose=False)
    batch.set_batch(model.tokenize(b"hello " * 16, True, False), n_past=0, logits_all=False)
    ctx.decode(batch)
"""


@functools.cache
def llamacpp_works() -> bool:
    """Is llama.cpp installed, and does its library run on this CPU?

    Checked once (~0.3 s), in a child process that decodes a short prompt with the smallest
    packaged GGUF when it is installed: a build made for another CPU, or one whose kernels
    this CPU or kernel refuses, dies of SIGILL, which would take the whole server down if it
    happened here.
    """
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        sample = [str(packaged.smollm2_gguf())]
    except ModelLoadError:
        sample = []  # no small GGUF to try: the library's start-up is all that is checked
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *sample], capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("llama.cpp probe failed (%s); using transformers", exc)
        return False
    if done.returncode != 0:
        log.warning("llama.cpp is installed but does not run here (exit %s); using transformers", done.returncode)
        return False
    log.info("llama.cpp: %s", done.stdout.strip())
    return True


def engine_for(settings: Settings, kind: Kind, model_id: str) -> tuple[str, str]:
    """(engine name, id without the engine prefix) for a configured model id."""
    name, target = split_engine(kind, model_id)
    if name is not None:
        return name, target
    if kind == "text" and trained.is_trained(model_id):
        # Its merged GGUF on llama.cpp when it has one (as fast as the base), else the base
        # with the adapter on transformers.
        merged = trained.folder(settings.data_dir, model_id) / "model.gguf"
        on_cpu = pick_device(settings.device) == "cpu"  # this llama.cpp build is CPU-only, as for a base
        if merged.is_file() and settings.text_backend in ("auto", "llamacpp") and on_cpu and llamacpp_works():
            return "llamacpp", str(merged)
        return "transformers", model_id
    if kind != "text":
        return DEFAULT_ENGINE[kind], target
    if settings.text_backend != "auto":
        return settings.text_backend, target
    gguf = target.endswith(".gguf") or (packaged.is_packaged(target) and packaged.is_gguf(target))
    # On a GPU the transformers engine uses the GPU; this llama.cpp build is CPU-only.
    if gguf and (target.endswith(".gguf") or pick_device(settings.device) == "cpu") and llamacpp_works():
        return "llamacpp", target
    return "transformers", target


def check_settings(settings: Settings) -> None:
    """Fail at start, naming the setting, on an unknown engine or engine prefix."""
    problems = []
    if settings.text_backend != "auto" and settings.text_backend not in TEXT_ENGINES:
        problems.append(
            f"AIGC_TEXT_BACKEND={settings.text_backend!r}: unknown engine "
            f"(known: auto, {', '.join(sorted(TEXT_ENGINES))})"
        )
    listed: list[tuple[str, Kind, str]] = [
        ("AIGC_TEXT_MODEL", "text", settings.text_model),
        ("AIGC_IMAGE_MODEL", "image", settings.image_model),
        ("AIGC_EMBED_MODEL", "embed", settings.embed_model),
    ]
    listed += [("AIGC_TEXT_MODELS", "text", m) for m in settings.text_model_choices]
    for env, kind, model_id in listed:
        if not model_id:
            continue
        try:
            split_engine(kind, model_id)
        except ValueError as exc:
            problems.append(f"{env}={model_id!r}: {exc}")
    if problems:
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(problems))


# -- loaded models -------------------------------------------------------------------------


class ModelRegistry:
    """Lazily loaded models, shared by every tab and request.

    Each kind has a default model (the profile's or the setting's); the text kind may
    also load the other models the profile offers (``AIGC_TEXT_MODELS``), each once.
    """

    def __init__(self, settings: Settings, *, preloaded: dict[Any, Any] | None = None) -> None:
        """``preloaded``: models already loaded, by kind (its default model) or by (kind, model id)."""
        self.settings = settings
        self._models: dict[tuple[Kind, str], Any] = {
            (key if isinstance(key, tuple) else (key, settings.model_for(key))): model
            for key, model in (preloaded or {}).items()
        }
        self._locks: dict[tuple[Kind, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._preloading: set[tuple[Kind, str]] = set()
        self._errors: dict[tuple[Kind, str], str] = {}
        self.load_seconds: dict[tuple[Kind, str], float] = {}
        self._trained_created: dict[str, Any] = {}  # trained:<name> → the card's "created" when loaded

    def model_id(self, kind: Kind) -> str:
        return self.settings.model_for(kind)

    def text_choices(self) -> list[str]:
        """Text models this deployment offers: the default first, then the others available."""
        choices = [self.model_id("text")]
        for model_id in self.settings.text_model_choices:
            target = split_engine("text", model_id)[1]
            if model_id not in choices and (not packaged.is_packaged(target) or packaged.available(target)):
                choices.append(model_id)
        # Models trained here (``python -m aigc_demo train``), found on every call: one trained
        # a minute ago is offered without a restart.
        return choices + [m for m in trained.trained_ids(self.settings.data_dir) if m not in choices]

    def _key(self, kind: Kind, model_id: str | None) -> tuple[Kind, str]:
        return kind, model_id or self.model_id(kind)

    def is_loaded(self, kind: Kind, model_id: str | None = None) -> bool:
        return self._key(kind, model_id) in self._models

    @overload
    def get(self, kind: Literal["text"], model_id: str | None = None) -> TextBackend: ...
    @overload
    def get(self, kind: Literal["image"], model_id: str | None = None) -> ImageBackend: ...
    @overload
    def get(self, kind: Literal["embed"], model_id: str | None = None) -> Embedder: ...
    def get(self, kind: Kind, model_id: str | None = None) -> Any:
        key = self._key(kind, model_id)
        model = self._models.get(key)
        if model is not None and kind == "text" and trained.is_trained(key[1]):
            # A trained model removed and trained again under its name is a new model: its
            # card's creation time tells, and the weights loaded for the old one go.
            card = trained.card(self.settings.data_dir, key[1]) or {}
            if card.get("created") != self._trained_created.get(key[1]):
                self._models.pop(key, None)
                model = None
        if model is not None:
            return model
        if kind == "text" and key[1] not in self.text_choices():
            raise ModelLoadError(f"Unknown text model {key[1][:80]!r}; choose one of: {', '.join(self.text_choices())}")
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._models:  # another request loaded it while we waited
                return self._models[key]
            model_id = key[1]
            start = time.perf_counter()
            try:
                engine, target = engine_for(self.settings, kind, model_id)
                model = backend_factory(kind, engine)(self.settings, model_id, target)
                if model.uses_torch:
                    compute.run(model.load)  # the thread that will use it (models/compute.py)
                else:  # an engine with its own threads (llama.cpp) or none (a remote server)
                    model.load()
            except ModelLoadError as exc:
                self._errors[key] = exc.message
                log.error("%s model failed to load: %s", kind, exc.message)
                raise
            except Exception as exc:
                log.exception("%s model failed to load", kind)
                error = ModelLoadError(
                    "model_not_prepared",
                    kind=Term(kind),
                    model=repr(model_id),
                    error=type(exc).__name__,
                    setting=f"AIGC_{kind.upper()}_MODEL",
                )
                self._errors[key] = error.message
                raise error from exc
            self.load_seconds[key] = time.perf_counter() - start
            self._errors.pop(key, None)
            if kind == "text" and trained.is_trained(model_id):
                self._trained_created[model_id] = (trained.card(self.settings.data_dir, model_id) or {}).get("created")
            log.info(
                "%s model %s loaded by %s in %.2fs",
                kind,
                model_id,
                model.backend,
                self.load_seconds[key],
            )
            self._models[key] = model
            return model

    def preload(self, kind: Kind) -> None:
        """Start loading ``kind``'s default model in the background; return at once.

        A failure is logged and recorded for status, and the first request tries again.
        A plain thread, not the compute thread: ``get`` holds the model's lock while the
        compute thread loads, so calling it *on* the compute thread could deadlock with a
        request that took the lock first.
        """

        key = self._key(kind, None)
        with self._locks_guard:
            if key in self._preloading or key in self._models:
                return
            self._preloading.add(key)

        def load() -> None:
            with contextlib.suppress(Exception):  # get() has logged and recorded the error
                self.get(kind)

        threading.Thread(target=load, name=f"preload-{kind}", daemon=True).start()

    def generating(self) -> bool:
        """Is a loaded text model writing an answer (or loading one) right now?"""
        with self._locks_guard:
            loading = any(kind == "text" for kind, _ in self._preloading - set(self._models))
        busy = any(m.busy for (kind, _), m in list(self._models.items()) if kind == "text")
        return loading or busy

    def info(self, kind: Kind, model_id: str | None = None) -> dict[str, str]:
        """What a record stores about the model: id, backend, profile (never a key or URL)."""
        key = self._key(kind, model_id)
        model = self._models.get(key)
        backend = model.backend if model is not None else None
        if backend is None:
            try:
                backend = engine_for(self.settings, kind, key[1])[0]
            except ValueError:
                backend = "?"
        info = {"id": key[1], "backend": backend, "profile": self.settings.effective_profile}
        if model is not None and model.precision:
            info["precision"] = model.precision
        return info

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in KINDS:
            key = self._key(kind, None)
            model = self._models.get(key)
            out[kind] = {
                "id": key[1],
                "loaded": model is not None,
                "error": self._errors.get(key),
                "load_seconds": round(self.load_seconds[key], 2) if key in self.load_seconds else None,
            }
            if model is not None:
                out[kind]["backend"] = model.backend
                if model.precision:
                    out[kind]["precision"] = model.precision
                if server := model.describe():  # a remote engine: its host, never its key
                    out[kind]["server"] = server
        out["text"]["choices"] = self.text_choices()
        return out

    def problems(self) -> dict[Kind, str]:
        """Each kind whose default model cannot serve: its last load error, or — before any
        load — the packages it is missing (so a monitor hears of it before a user does)."""
        out: dict[Kind, str] = {}
        for kind in KINDS:
            key = self._key(kind, None)
            if key in self._models:
                continue
            if error := self._errors.get(key):
                out[kind] = error
                continue
            target = split_engine(kind, key[1])[1]
            if packaged.is_packaged(target) and (why := packaged.missing(target)) is not None:
                out[kind] = why.message
        return out

    def loaded(self) -> list[str]:
        return sorted(f"{kind}:{model_id}" for kind, model_id in self._models)
