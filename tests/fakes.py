"""Fake backends: the real backends' Protocols (models/base.py), with no weights.

They keep the contract exactly (same method and argument names, the capability defaults they
inherit), so services and UI are tested without models. ``conftest.fake_registry`` serves them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import numpy as np

from aigc_demo.models.base import Embedder, GenerationStats, ImageBackend, TextBackend, TextRequest, split_prefill


class FakeTextBackend(TextBackend):
    """Echoes a deterministic reply word by word; honours the TextRequest contract."""

    backend = "fake"
    model_id = "fake-text"
    precision = ""
    parallel = 1

    def __init__(self, reply: str | None = None, delay: float = 0.0) -> None:
        self.reply = reply
        self.delay = delay
        self.requests: list[TextRequest] = []

    def load(self) -> None:
        pass

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        self.requests.append(request)
        messages, prefill = split_prefill(request.messages or [])
        source = request.prompt if request.prompt is not None else (messages or [{}])[-1].get("content", "")
        reply = self.reply if self.reply is not None else f"Echo ({request.seed}): {source}"
        all_words = reply.split(" ")
        if prefill:  # continue the answer: the words after the ones already written
            all_words = all_words[len(prefill.split(" ")) :] or ["(end)"]
        words = all_words[: request.max_new_tokens]
        # As real engines report it: the whole reply fits → "stop" (end of text); cut → "length".
        stats.finish_reason = "stop" if len(words) == len(all_words) else "length"
        stats.prompt_tokens = len(source.split())
        start = time.perf_counter()
        text = ""
        for i, word in enumerate(words):
            if self.delay:
                time.sleep(self.delay)
            chunk = word if i == 0 and not prefill else " " + word
            text += chunk
            stats.completion_tokens += 1
            if stats.ttft_ms is None:
                stats.ttft_ms = (time.perf_counter() - start) * 1000
            stop_at = min((text.find(s) for s in request.stop if s and s in text), default=-1)
            if stop_at >= 0:
                stats.finish_reason = "stop"
                yield chunk[: len(chunk) - (len(text) - stop_at)]
                break
            yield chunk
        stats.total_ms = (time.perf_counter() - start) * 1000


class FakeImageBackend(ImageBackend):
    backend = "fake"
    placeholder = True

    def load(self) -> None:
        pass

    def generate(
        self, *, prompt, negative_prompt="", steps, guidance_scale, width, height, seed, num_images=1, on_step=None
    ):
        from PIL import Image

        for step in range(1, steps + 1):
            if on_step is not None:
                on_step(step, steps)
        images = []
        for i in range(num_images):
            digest = hashlib.sha256(f"{prompt}|{seed + i}".encode()).digest()
            images.append(Image.new("RGB", (width, height), tuple(digest[:3])))
        return images


class FakeEmbedder(Embedder):
    """Hashed bag of retrieval tokens: deterministic, language-agnostic, no weights."""

    backend = "fake"
    model_id = "fake-embedder"
    dimension = 256

    def load(self) -> None:
        pass

    def embed(self, texts: list[str]) -> np.ndarray:
        from aigc_demo.services.support.retrieval import tokenize

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                out[row, int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
