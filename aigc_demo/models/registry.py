"""Backends by name, and the per-process cache of loaded models.

``BACKENDS`` is a plain dict (like llm's ``register_models``): ``register(kind, name,
factory)`` adds one; ``AIGC_TEXT_BACKEND`` picks one. :class:`ModelRegistry` loads each
kind lazily on first use, once per process, under a lock, so concurrent first
requests wait for one load instead of starting several. A model that fails to load
raises :class:`ModelLoadError` for its own tab only; the next request tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Literal

from aigc_demo.config import Settings
from aigc_demo.errors import ModelLoadError
from aigc_demo.models import compute, packaged
from aigc_demo.models.device import pick_device, pick_dtype

log = logging.getLogger(__name__)

Kind = Literal["text", "image", "embed"]
Factory = Callable[[Settings, str], Any]


def _text_transformers(settings: Settings, model_id: str) -> Any:
    from aigc_demo.models.text import TransformersTextBackend

    from aigc_demo.models.quant import resolve_precision

    device = pick_device(settings.device)
    dtype, int8_weights, label = resolve_precision(settings.text_precision, device, pick_dtype(device))
    return TransformersTextBackend(
        model_id, source=_source(settings, model_id), device=device, dtype=dtype, int8_weights=int8_weights, precision=label
    )


def _image_diffusers(settings: Settings, model_id: str) -> Any:
    from aigc_demo.models.image import DiffusersImageBackend

    device = pick_device(settings.device)
    return DiffusersImageBackend(
        model_id,
        source=_source(settings, model_id),
        device=device,
        dtype=pick_dtype(device),
        placeholder=model_id == "packaged:tiny-sd",
    )


def _embed_sentence_transformers(settings: Settings, model_id: str) -> Any:
    from aigc_demo.models.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model_id, source=_source(settings, model_id), device=pick_device(settings.device))


def _source(settings: Settings, model_id: str) -> str:
    if packaged.is_packaged(model_id):
        return str(packaged.resolve(model_id, settings.cache_dir))
    return model_id


BACKENDS: dict[str, dict[str, Factory]] = {
    "text": {"transformers": _text_transformers},
    "image": {"diffusers": _image_diffusers},
    "embed": {"sentence-transformers": _embed_sentence_transformers},
}
DEFAULT_BACKEND = {"text": "transformers", "image": "diffusers", "embed": "sentence-transformers"}


def register(kind: Kind, name: str, factory: Factory) -> None:
    BACKENDS.setdefault(kind, {})[name] = factory


def backend_factory(kind: Kind, name: str) -> Factory:
    try:
        return BACKENDS[kind][name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS.get(kind, {}))) or "none"
        raise ModelLoadError(f"Unknown backend: {name} (known {kind} backends: {known})") from None


class ModelRegistry:
    """Lazily loaded models, shared by every tab and request.

    Each kind has a default model (the profile's or the setting's); the text kind may
    also load the other models the profile offers (``AIGC_TEXT_MODELS``), each once.
    """

    def __init__(self, settings: Settings, *, preloaded: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self._models: dict[tuple[str, str], Any] = {
            (kind, settings.model_for(kind)): model for kind, model in (preloaded or {}).items()  # type: ignore[arg-type]
        }
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._preloading: set[tuple[str, str]] = set()
        self._errors: dict[tuple[str, str], str] = {}
        self.load_seconds: dict[tuple[str, str], float] = {}

    def model_id(self, kind: Kind) -> str:
        return self.settings.model_for(kind)

    def text_choices(self) -> list[str]:
        """Text models this deployment offers: the default first, then the others available."""
        choices = [self.model_id("text")]
        for model_id in self.settings.text_model_choices:
            if model_id not in choices and (not packaged.is_packaged(model_id) or packaged.available(model_id)):
                choices.append(model_id)
        return choices

    def _key(self, kind: Kind, model_id: str | None) -> tuple[str, str]:
        return kind, model_id or self.model_id(kind)

    def is_loaded(self, kind: Kind, model_id: str | None = None) -> bool:
        return self._key(kind, model_id) in self._models

    def get(self, kind: Kind, model_id: str | None = None) -> Any:
        key = self._key(kind, model_id)
        model = self._models.get(key)
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
            backend = self.settings.text_backend if kind == "text" else DEFAULT_BACKEND[kind]
            start = time.perf_counter()
            try:
                model = backend_factory(kind, backend)(self.settings, model_id)
                compute.run(model.load)  # the thread that will use it (models/compute.py)
            except ModelLoadError as exc:
                self._errors[key] = exc.message
                log.error("%s model failed to load: %s", kind, exc.message)
                raise
            except Exception as exc:  # noqa: BLE001 - a broken model breaks only its tab
                log.exception("%s model failed to load", kind)
                message = (
                    f"The {kind} model {model_id!r} could not be prepared ({type(exc).__name__}). "
                    f"Check AIGC_{kind.upper()}_MODEL; the server log has details."
                )
                self._errors[key] = message
                raise ModelLoadError(message) from exc
            self.load_seconds[key] = time.perf_counter() - start
            self._errors.pop(key, None)
            log.info("%s model %s loaded in %.1fs", kind, model_id, self.load_seconds[key])
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
            try:
                self.get(kind)
            except Exception:  # noqa: BLE001 - already logged by get()
                pass

        threading.Thread(target=load, name=f"preload-{kind}", daemon=True).start()

    def info(self, kind: Kind, model_id: str | None = None) -> dict[str, str]:
        """What a record stores about the model: id, backend, profile."""
        key = self._key(kind, model_id)
        model = self._models.get(key)
        backend = getattr(model, "backend", None) or (
            self.settings.text_backend if kind == "text" else DEFAULT_BACKEND[kind]
        )
        info = {"id": key[1], "backend": backend, "profile": self.settings.effective_profile}
        if getattr(model, "precision", None):
            info["precision"] = model.precision
        return info

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in ("text", "image", "embed"):
            key = self._key(kind, None)  # type: ignore[arg-type]
            out[kind] = {
                "id": key[1],
                "loaded": key in self._models,
                "error": self._errors.get(key),
                "load_seconds": round(self.load_seconds[key], 2) if key in self.load_seconds else None,
            }
            if getattr(self._models.get(key), "precision", None):
                out[kind]["precision"] = self._models[key].precision
        out["text"]["choices"] = self.text_choices()
        return out

    def loaded(self) -> list[str]:
        return sorted(f"{kind}:{model_id}" for kind, model_id in self._models)
