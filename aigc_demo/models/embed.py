"""Sentence embeddings through sentence-transformers (normalised, cosine-ready)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.config import Settings
from aigc_demo.errors import ModelLoadError
from aigc_demo.models import compute, packaged
from aigc_demo.models.base import Embedder
from aigc_demo.models.device import pick_device

SHORT_BATCH = 4


class SentenceTransformerEmbedder(Embedder):
    backend = "sentence-transformers"

    def __init__(self, model_id: str, *, source: str | Path, device: str) -> None:
        self.model_id = model_id
        self.source = str(source)
        self.device = device
        self.model: Any = None
        # Can its scores be compared across languages (support retrieval trusts them then)?
        self.multilingual = any(k in model_id.lower() for k in ("multilingual", "bge-m3", "labse"))

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> SentenceTransformerEmbedder:
        return cls(model_id, source=packaged.source(target, settings.cache_path), device=pick_device(settings.device))

    def load(self) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(self.source, device=self.device)
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the embedding model {self.model_id!r} ({type(exc).__name__}). "
                "Set AIGC_EMBED_MODEL to a sentence-transformers Hub id or local directory, "
                "or leave it empty for the embedded offline model."
            ) from exc

    def embed(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)

        def encode() -> np.ndarray:
            return self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )

        # On a CPU a knowledge base is embedded on the compute thread (models/compute.py); a
        # query is embedded here, on one core, without waiting behind a generation.
        vectors = compute.run(encode) if self.device == "cpu" and len(texts) > SHORT_BATCH else encode()
        return vectors.astype(np.float32)

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())
