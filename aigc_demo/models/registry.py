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
from aigc_demo.models import packaged
from aigc_demo.models.device import pick_device, pick_dtype

log = logging.getLogger(__name__)

Kind = Literal["text", "image", "embed"]
Factory = Callable[[Settings, str], Any]


def _text_transformers(settings: Settings, model_id: str) -> Any:
    from aigc_demo.models.text import TransformersTextBackend

    device = pick_device(settings.device)
    return TransformersTextBackend(model_id, source=_source(settings, model_id), device=device, dtype=pick_dtype(device))


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
    """Lazily loaded models, one per kind, shared by every tab and request."""

    def __init__(self, settings: Settings, *, preloaded: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self._models: dict[str, Any] = dict(preloaded or {})
        self._locks = {kind: threading.Lock() for kind in ("text", "image", "embed")}
        self._errors: dict[str, str] = {}
        self.load_seconds: dict[str, float] = {}

    def model_id(self, kind: Kind) -> str:
        return self.settings.model_for(kind)

    def is_loaded(self, kind: Kind) -> bool:
        return kind in self._models

    def get(self, kind: Kind) -> Any:
        model = self._models.get(kind)
        if model is not None:
            return model
        with self._locks[kind]:
            if kind in self._models:  # another request loaded it while we waited
                return self._models[kind]
            model_id = self.model_id(kind)
            backend = self.settings.text_backend if kind == "text" else DEFAULT_BACKEND[kind]
            start = time.perf_counter()
            try:
                model = backend_factory(kind, backend)(self.settings, model_id)
                model.load()
            except ModelLoadError as exc:
                self._errors[kind] = exc.message
                log.error("%s model failed to load: %s", kind, exc.message)
                raise
            except Exception as exc:  # noqa: BLE001 - a broken model breaks only its tab
                log.exception("%s model failed to load", kind)
                message = (
                    f"The {kind} model {model_id!r} could not be prepared ({type(exc).__name__}). "
                    f"Check AIGC_{kind.upper()}_MODEL; the server log has details."
                )
                self._errors[kind] = message
                raise ModelLoadError(message) from exc
            self.load_seconds[kind] = time.perf_counter() - start
            self._errors.pop(kind, None)
            log.info("%s model %s loaded in %.1fs", kind, model_id, self.load_seconds[kind])
            self._models[kind] = model
            return model

    def info(self, kind: Kind) -> dict[str, str]:
        """What a record stores about the model: id, backend, profile."""
        model = self._models.get(kind)
        backend = getattr(model, "backend", None) or (
            self.settings.text_backend if kind == "text" else DEFAULT_BACKEND[kind]
        )
        return {"id": self.model_id(kind), "backend": backend, "profile": self.settings.effective_profile}

    def status(self) -> dict[str, Any]:
        return {
            kind: {
                "id": self.model_id(kind),
                "loaded": kind in self._models,
                "error": self._errors.get(kind),
                "load_seconds": round(self.load_seconds[kind], 2) if kind in self.load_seconds else None,
            }
            for kind in ("text", "image", "embed")
        }
