"""Text engine: any OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp's server, Ollama).

Model ids ``openai:<served model name>``; the server is ``AIGC_OPENAI_BASE_URL`` (or the
standard ``OPENAI_BASE_URL``) with ``AIGC_OPENAI_API_KEY`` (or ``OPENAI_API_KEY``). This is
how a user-testing session outgrows one box: the server batches many testers at once, and
the app only streams. Chat requests use Chat Completions; ``continue`` mode (a raw prompt)
uses the legacy Completions endpoint that all of those servers still serve.

Usage comes from the server when it sends it (``stream_options.include_usage``); a server
that ignores the option gets its chunks counted instead. The key never leaves this module:
not in a log line, a record, an error message or ``/healthz`` (``describe()`` shows the
host only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, ModelLoadError
from aigc_demo.models.base import FinishReason, GenerationStats, TextBackend, TextRequest
from aigc_demo.models.streaming import VisibleText

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
MAX_SERVER_STOPS = 4  # OpenAI's own limit; the rest are applied here, on the stream


class OpenAITextBackend(TextBackend):
    backend = "openai"
    precision = "server"
    uses_torch = False  # loads and runs off the torch compute thread

    def __init__(
        self,
        model_id: str,
        *,
        served_name: str,
        base_url: str,
        api_key: str = "",
        timeout_s: float = 60.0,
        parallel: int = 64,
    ) -> None:
        self.model_id = model_id
        self.served_name = served_name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.parallel = parallel  # the server batches; the app's queue should not serialise
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> OpenAITextBackend:
        return cls(
            model_id,
            served_name=target,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout_s=settings.openai_timeout_s,
        )

    def describe(self) -> str:
        """Where requests go, safe to show: scheme and host only (no path, no credentials)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")

    def load(self) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ModelLoadError(f"The OpenAI client is not installed ({exc}); run `pip install openai`.") from exc
        if not self.base_url:
            raise ModelLoadError("server_needed", model=repr(self.model_id))
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "not-needed",  # local servers accept any key; the client wants one
            timeout=openai.Timeout(self.timeout_s, connect=CONNECT_TIMEOUT_S),
            max_retries=0,  # a retry would restart a half-streamed answer; the user retries
        )

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Generator[str, None, None]:
        import openai

        stats = stats if stats is not None else GenerationStats()
        start = time.perf_counter()
        options = self._options(request)
        visible = VisibleText(request.stop)
        progress = _Progress()
        response: Any = None
        try:
            try:
                response = self._create(request, options)
                yield from _read_chunks(response, visible, stats, progress, start)
            except openai.APIError as exc:
                raise self._user_error(exc) from None
            if progress.server_reason is None and not visible.stopped:
                # A stream that ends without a finish reason broke on the server (llama.cpp's
                # server, for one, answers 200 and an empty stream when the prompt is too long).
                raise AigcError("server_cut_answer", where=self.describe())
            tail = visible.finish()
            if tail:
                yield tail
        except GeneratorExit:
            stats.finish_reason = "cancelled"
            raise
        finally:
            if response is not None:
                response.close()  # closes the connection: the server stops generating
            stats.total_ms = (time.perf_counter() - start) * 1000
            if not stats.completion_tokens:
                stats.completion_tokens = progress.chunks  # one chunk per token on the servers we know
        if stats.finish_reason != "cancelled":
            stats.finish_reason = _finish_reason(visible.stopped, progress.server_reason, bool(request.stop))

    def _options(self, request: TextRequest) -> dict[str, Any]:
        """The request's arguments shared by both endpoints."""
        options: dict[str, Any] = {
            "model": self.served_name,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            options["stop"] = request.stop[:MAX_SERVER_STOPS]
        return options

    def _create(self, request: TextRequest, options: dict[str, Any]) -> Any:
        """Start the streamed answer: Chat Completions for messages, Completions for a raw prompt."""
        # A final assistant message is continued, not answered, by llama.cpp's server
        # and vLLM (the contract in models/base.py); other servers may start a new turn.
        if request.messages is not None:
            return self._client.chat.completions.create(messages=request.messages, **options)
        return self._client.completions.create(prompt=request.prompt or "", **options)

    def _user_error(self, exc: Exception) -> AigcError:
        import openai

        where = self.describe()
        if isinstance(exc, openai.APITimeoutError):
            return AigcError("server_timeout", where=where, s=f"{self.timeout_s:.0f}")
        if isinstance(exc, openai.APIConnectionError):
            return AigcError("server_unreachable", where=where)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return AigcError("server_refused_key", where=where)
        if isinstance(exc, openai.NotFoundError):
            return AigcError("server_no_model", where=where, model=repr(self.served_name))
        status = getattr(exc, "status_code", None)
        if status == 400 and "context" in str(getattr(exc, "message", "")).lower():
            return AigcError("server_context_full")
        log.warning("text server error %s: %s", status, type(exc).__name__)
        return AigcError("server_error", where=where, status=status or type(exc).__name__)


@dataclass
class _Progress:
    """What a stream has told so far: content chunks seen, and the server's finish reason."""

    chunks: int = 0
    server_reason: str | None = None


def _read_chunks(
    response: Any, visible: VisibleText, stats: GenerationStats, progress: _Progress, start: float
) -> Generator[str, None, None]:
    """Yield the visible text of a streamed response's chunks, until it ends or a stop string
    appears; record usage, the time to the first token, chunks and finish reason meanwhile."""
    for chunk in response:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            stats.prompt_tokens = int(usage.prompt_tokens or 0)
            stats.completion_tokens = int(usage.completion_tokens or 0)
        for choice in chunk.choices or []:
            piece = _content(choice)
            progress.server_reason = choice.finish_reason or progress.server_reason
            if not piece:
                continue
            progress.chunks += 1
            if stats.ttft_ms is None:
                stats.ttft_ms = (time.perf_counter() - start) * 1000
            delta = visible.push(piece)
            if delta:
                yield delta
        if visible.stopped:
            break


def _content(choice: Any) -> str:
    delta = getattr(choice, "delta", None)  # chat
    if delta is not None:
        return getattr(delta, "content", None) or ""
    return getattr(choice, "text", None) or ""  # completions


def _finish_reason(stopped_here: bool, server: str | None, had_stops: bool) -> FinishReason:
    if stopped_here:
        return "stop"
    if server == "length":
        return "length"
    if server == "stop":
        return "stop" if had_stops else "eos"
    return "eos" if server else "length"
