"""Text engine: llama.cpp (``llama-cpp-python``) for GGUF models, with continuous batching.

The offline profile's CPU default. llama.cpp runs the packaged SmolLM2 GGUF as it is —
quantised kernels for AVX2, AVX-512 and NEON alike, no conversion, a load in a fraction of
a second — where transformers first dequantises it to float and then decodes a few times
slower on a CPU without native bf16.

Several testers at once: one llama.cpp context holds ``parallel`` slots, each with its own
``n_ctx``-token window of the KV cache, and a scheduler thread decodes them **together**:
every step puts the next token of each running answer, plus a chunk of any new prompt,
into one ``llama_decode`` batch (what llama.cpp's own server and vLLM call continuous
batching). A newcomer's first token waits for one step and its own prompt, not for the
others to finish; a request that finds every slot busy waits for the first free one.

Prompt reuse: a slot keeps its tokens in the KV cache after its answer ends, and a new
request takes the free slot whose cached tokens share the longest prefix with its prompt,
so only the rest is computed. Every chat prompt begins with the same system text, and a
conversation's next turn begins with the whole previous one; on a CPU where prompt
processing is slow this is most of a first token's wait.

Sampling is llama.cpp's own sampler chain per sequence (top-k 50, top-p, temperature,
seeded), or greedy at temperature 0. Tokens leave the scheduler as raw bytes and become
text in the consumer through :mod:`models.streaming` (no U+FFFD, stop strings held back).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, ModelLoadError
from aigc_demo.models import packaged
from aigc_demo.models.base import (
    FinishReason,
    GenerationStats,
    TextBackend,
    TextRequest,
    flatten_messages,
    split_prefill,
)
from aigc_demo.models.compute import lower_priority
from aigc_demo.models.streaming import Utf8Decoder, VisibleText

log = logging.getLogger(__name__)

TOP_K = 50  # transformers' generation default, so both engines sample alike
REPEAT_WINDOW = 64  # tokens the repeat penalty looks back on (llama.cpp's default)
PREFILL_CHUNK = 128  # prompt tokens per step while other answers stream


def physical_cores() -> int:
    """Cores this process may use, counting SMT siblings once (llama.cpp's advice)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        siblings = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text()
        per_core = len([p for p in siblings.replace("-", ",").split(",") if p.strip()])
    except OSError:
        per_core = 1
    return max(1, usable // max(1, per_core))


@dataclass
class _Done:
    reason: FinishReason


@dataclass
class _Slot:
    """One sequence id of the context and the tokens its KV cells hold, position 0 onwards."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    busy: bool = False


@dataclass
class _Sequence:
    """One request inside the scheduler. The consumer only reads ``out`` and sets ``cancelled``."""

    prompt: list[int]
    max_new: int
    min_new: int
    temperature: float
    top_p: float
    seed: int
    repeat_penalty: float = 1.0
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # bytes | _Done | BaseException
    cancelled: bool = False
    slot: _Slot | None = None
    sampler: Any = None
    sent: int = 0  # prompt tokens already in the KV cache
    pending: int | None = None  # sampled, not yet decoded
    generated: int = 0


def model_params(llama_cpp: Any) -> Any:
    """llama.cpp's model parameters as this engine (and the start-up probe) load a GGUF with.

    A build with ggml's AMX kernels (a native build on a Xeon with AMX) dies of SIGILL on the
    first prompt of eight tokens or more, even with the process's AMX permission requested: the
    kernels run tile instructions in worker threads without a valid tile configuration. They
    are reached only through the repacked "extra" weight buffers, so plain buffers keep the
    process alive (measured: no slower for Q4_K on a Xeon, bench/RESULTS.md); `make setup`
    builds without AMX, which keeps the repacking too.
    """
    params = llama_cpp.llama_model_default_params()
    if b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info():
        params.use_extra_bufts = False
    return params


class LlamaCppTextBackend(TextBackend):
    """A GGUF model served by one llama.cpp context and one scheduler thread."""

    backend = "llamacpp"
    uses_torch = False  # loads and runs off the torch compute thread

    def __init__(
        self,
        model_id: str,
        *,
        path: str | Path,
        n_ctx: int = 2048,
        parallel: int = 10,
        n_threads: int = 0,
        n_threads_batch: int = 0,
        n_batch: int = 512,
    ) -> None:
        self.model_id = model_id
        self.path = str(path)
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.n_threads = n_threads or physical_cores()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.n_batch = n_batch
        self.precision = "gguf"
        self._lib: Any = None
        self._fast: Any = None
        self._model: Any = None
        self._ctx: Any = None
        self._batch: Any = None
        self._formatter: Any = None
        self._eog: list[int] = []
        self._eog_set: frozenset[int] = frozenset()
        self._prefix: list[int] = []
        self._n_ctx_seq = n_ctx
        self._cond = threading.Condition()
        self._waiting: deque[_Sequence] = deque()
        self._running: list[_Sequence] = []
        self._slots = [_Slot(i) for i in range(parallel)]
        self._closed = False
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> LlamaCppTextBackend:
        path = (
            packaged.gguf_file(target, settings.cache_path)
            if packaged.is_packaged(target)
            else Path(target).expanduser()
        )
        return cls(
            model_id,
            path=path,
            n_ctx=settings.llamacpp_ctx,
            parallel=settings.llamacpp_parallel,
            n_threads=settings.llamacpp_threads,
        )

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        try:
            import llama_cpp
            from llama_cpp import _internals
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelLoadError(
                f"The llama.cpp engine is not installed ({exc}). Run `make setup`, or "
                "`pip install llama-cpp-python`, or use the transformers engine (AIGC_TEXT_BACKEND=transformers)."
            ) from exc
        if not Path(self.path).is_file():
            raise ModelLoadError(f"GGUF file not found for {self.model_id!r}: {Path(self.path).name}")
        self._lib = llama_cpp
        self._fast = _HeldGil(llama_cpp)
        _backend_init(llama_cpp)
        llama_cpp._logger.set_verbose(log.isEnabledFor(logging.DEBUG))  # llama.cpp's own chatter
        mparams = model_params(llama_cpp)
        try:
            self._model = _internals.LlamaModel(path_model=self.path, params=mparams, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(f"llama.cpp could not load {self.model_id!r}: {exc}") from exc
        n_ctx_train = self._model.n_ctx_train()
        self._n_ctx_seq = min(self.n_ctx, n_ctx_train or self.n_ctx)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self._n_ctx_seq * self.parallel
        cparams.n_batch = cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = self.parallel
        # One KV window per slot: attention reads only its own cells (in a shared pool every
        # sequence attends over all of them), and a slot's cache survives for the next request
        # without crowding out the others.
        cparams.kv_unified = False
        cparams.n_threads = self.n_threads
        cparams.n_threads_batch = self.n_threads_batch
        cparams.no_perf = True
        self._ctx = _internals.LlamaContext(model=self._model, params=cparams, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        vocab = self._model.vocab
        self._eog = [t for t in range(self._model.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
        self._eog_set = frozenset(self._eog)
        meta = self._model.metadata()
        template = meta.get("tokenizer.chat_template")
        if template:
            self._formatter = Jinja2ChatFormatter(
                template,
                eos_token=self._piece_text(self._model.token_eos()),
                bos_token=self._piece_text(self._model.token_bos()),
            )
        self.precision = _file_type(self._model.desc())
        self._prefix = self._chat_prefix()
        self._thread = threading.Thread(target=self._loop, name=f"llamacpp-{Path(self.path).stem}", daemon=True)
        self._thread.start()
        # Stop the decode loop before the interpreter frees the model at exit: a daemon thread
        # still inside llama_decode then reads freed memory (a segfault at shutdown).
        engine = weakref.ref(self)

        def close_at_exit() -> None:
            alive = engine()
            if alive is not None:
                alive.close()

        atexit.register(close_at_exit)

    @property
    def busy(self) -> bool:
        """Answers being written or waiting (background start-up work waits for none)."""
        return bool(self._running or self._waiting)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the contract ----------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def encode(self, request: TextRequest) -> list[int]:
        if request.messages is not None and self._formatter is not None:
            head, prefill = split_prefill(request.messages)
            text = self._formatter(messages=head).prompt + prefill  # prefill: continue the answer
            tokens = self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        else:
            text = request.prompt if request.prompt is not None else flatten_messages(request.messages or [])
            # The user's own text: special-token markup in it stays plain text.
            tokens = self._model.tokenize(text.encode("utf-8"), add_bos=self._model.add_bos_token(), special=False)
        # Keep the prompt inside this sequence's window: drop the oldest tokens, so the end of
        # a long conversation (the question) survives.
        budget = max(1, self._n_ctx_seq - min(request.max_new_tokens, self._n_ctx_seq // 2))
        return tokens[-budget:] if len(tokens) > budget else tokens or [self._model.token_bos()]

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Generator[str, None, None]:
        stats = stats if stats is not None else GenerationStats()
        start = time.perf_counter()
        prompt = self.encode(request)
        stats.prompt_tokens = len(prompt)
        seq = _Sequence(
            prompt=prompt,
            max_new=max(1, min(request.max_new_tokens, self._n_ctx_seq - len(prompt))),
            min_new=request.min_new_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed & 0xFFFFFFFF,
            repeat_penalty=request.repeat_penalty,
        )
        with self._cond:
            if self._closed:
                raise ModelLoadError(f"The text model {self.model_id!r} was shut down; reload the page.")
            self._waiting.append(seq)
            self._cond.notify()
        decoder, visible = Utf8Decoder(), VisibleText(request.stop)
        try:
            while True:
                item = seq.out.get()
                if isinstance(item, bytes):
                    if stats.ttft_ms is None:
                        stats.ttft_ms = (time.perf_counter() - start) * 1000
                    stats.completion_tokens = seq.generated
                    delta = visible.push(decoder.decode(item))
                    if delta:
                        yield delta
                    if visible.stopped:
                        stats.finish_reason = "stop"
                        break
                elif isinstance(item, _Done):
                    stats.finish_reason = item.reason
                    tail = visible.push(decoder.finish()) + visible.finish()
                    if tail:
                        yield tail
                    break
                else:
                    raise item
        except GeneratorExit:
            stats.finish_reason = "cancelled"
            raise
        finally:
            seq.cancelled = True  # the scheduler frees the slot at its next step
            stats.completion_tokens = seq.generated
            stats.total_ms = (time.perf_counter() - start) * 1000

    # -- the scheduler thread --------------------------------------------------------------

    def _chat_prefix(self) -> list[int]:
        """The tokens every chat without its own system prompt starts with (the template's
        default system text and the user turn's header)."""
        if self._formatter is None:
            return []
        marker = "\u2063prefix-marker\u2063"
        text = self._formatter(messages=[{"role": "user", "content": marker}]).prompt
        head = text.split(marker)[0]
        return self._model.tokenize(head.encode("utf-8"), add_bos=False, special=True) if head else []

    def _warm_one_slot(self) -> bool:
        """While idle, compute the common chat prefix into one cold slot; False when none is left.

        A tester's first question then only computes its own words: ten testers arriving at
        once on a fresh server otherwise each pay for the same system text.
        """
        if not self._prefix:
            return False
        # Only a slot whose cache is empty or a start of the prefix: one that holds another
        # conversation (its own system prompt, as every preset has) keeps it for its next turn.
        cold = next(
            (
                sl
                for sl in self._slots
                if not sl.busy and _common_prefix(sl.cached, self._prefix) == len(sl.cached) < len(self._prefix)
            ),
            None,
        )
        if cold is None:
            return False
        keep = _common_prefix(cold.cached, self._prefix)
        self._lib.llama_memory_seq_rm(self._ctx.memory, cold.seq_id, keep, -1)
        batch = self._batch.batch
        batch.n_tokens = 0
        for pos in range(keep, len(self._prefix)):
            self._add(self._prefix[pos], pos, cold.seq_id, False)
        if self._lib.llama_decode(self._ctx.ctx, batch) != 0:
            self._lib.llama_memory_seq_rm(self._ctx.memory, cold.seq_id, -1, -1)
            cold.cached = []
            return False
        cold.cached = list(self._prefix)
        return True

    def _loop(self) -> None:
        lower_priority()  # below the server's threads; llama.cpp's thread team inherits it
        warm = True
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._running:
                    if warm:
                        break  # idle: warm a slot (below), then look for work again
                    self._cond.wait()
                if self._closed:
                    break
                idle = not self._waiting and not self._running
                self._admit()
            if idle:
                try:
                    warm = self._warm_one_slot()
                except Exception:
                    log.exception("llama.cpp slot warm-up failed")
                    warm = False
                continue
            warm = True  # requests change what the slots hold: check again when idle
            try:
                self._step()
            except Exception:
                log.exception("llama.cpp step failed")
                error = AigcError("engine_failed")
                for seq in list(self._running):
                    if seq.slot is not None:  # its cells may be half written: start that slot afresh
                        self._lib.llama_memory_seq_rm(self._ctx.memory, seq.slot.seq_id, -1, -1)
                        seq.slot.cached = []
                    self._finish(seq, error)
        for seq in [*self._running, *self._waiting]:
            seq.out.put(ModelLoadError("The text engine stopped."))

    def _admit(self) -> None:
        """Give waiting requests free slots, each the one whose cache shares most of its prompt."""
        while self._waiting:
            seq = self._waiting[0]
            if seq.cancelled:
                self._waiting.popleft()
                continue
            free = [slot for slot in self._slots if not slot.busy]
            if not free:
                return  # first come, first served: the rest wait for a slot
            self._waiting.popleft()
            slot = max(free, key=lambda sl: _common_prefix(sl.cached, seq.prompt))
            # Reuse the shared prefix, but compute at least the last prompt token: its logits
            # give the first answer token.
            keep = min(_common_prefix(slot.cached, seq.prompt), len(seq.prompt) - 1)
            self._lib.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, keep, -1)
            slot.cached = slot.cached[:keep]
            slot.busy = True
            seq.slot, seq.sent = slot, keep
            seq.sampler = self._new_sampler(seq)
            self._running.append(seq)

    def _step(self) -> None:
        lib, batch = self._lib, self._batch.batch
        for seq in [s for s in self._running if s.cancelled]:
            self._finish(seq, None)
        rows = self._fill_batch()
        if batch.n_tokens == 0:
            return
        rc = lib.llama_decode(self._ctx.ctx, batch)  # ctypes releases the GIL meanwhile
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        for seq, row in rows:
            if not seq.cancelled:
                self._sample_next(seq, row)

    def _fill_batch(self) -> list[tuple[_Sequence, int]]:
        """Fill the batch for one decode; return the (sequence, row) pairs whose logits it gives."""
        batch = self._batch.batch
        batch.n_tokens = 0
        rows: list[tuple[_Sequence, int]] = []
        # One token for every answer in progress, then prompt chunks in arrival order. While
        # answers are streaming, a long prompt goes in smaller chunks so they keep moving.
        for seq in self._running:
            if seq.pending is not None:
                rows.append((seq, self._feed(seq, seq.pending, logits=True)))
        budget = self.n_batch if not rows else max(PREFILL_CHUNK, self.n_batch // 4)
        for seq in self._running:
            room = min(budget, self.n_batch) - batch.n_tokens
            if seq.sent >= len(seq.prompt) or room <= 0:
                continue
            chunk = seq.prompt[seq.sent : seq.sent + room]
            last = seq.sent + len(chunk) == len(seq.prompt)
            for offset, token in enumerate(chunk):
                row = self._feed(seq, token, logits=last and offset == len(chunk) - 1)
            seq.sent += len(chunk)
            if last:
                rows.append((seq, row))
        return rows

    def _sample_next(self, seq: _Sequence, row: int) -> None:
        """Sample ``seq``'s next token from batch ``row``'s logits; hand it on, or finish ``seq``."""
        if seq.generated < seq.min_new:
            logits = self._fast.logits_ith(self._ctx.ctx, row)
            for token in self._eog:
                logits[token] = float("-inf")
        token = self._fast.sample(seq.sampler.sampler, self._ctx.ctx, row)
        seq.pending = None
        if token in self._eog_set:
            self._finish(seq, _Done("eos"))
            return
        seq.generated += 1
        seq.out.put(self._piece(token))
        if seq.generated >= seq.max_new:
            self._finish(seq, _Done("length"))
        else:
            seq.pending = token

    def _feed(self, seq: _Sequence, token: int, *, logits: bool) -> int:
        """Add ``token`` at the next position of ``seq``'s slot; return its batch row."""
        assert seq.slot is not None
        row = self._add(token, len(seq.slot.cached), seq.slot.seq_id, logits)
        seq.slot.cached.append(token)
        return row

    def _add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        batch = self._batch.batch
        row = batch.n_tokens
        batch.token[row] = token
        batch.pos[row] = pos
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = seq_id
        batch.logits[row] = logits
        batch.n_tokens = row + 1
        return row

    def _finish(self, seq: _Sequence, item: _Done | BaseException | None) -> None:
        if seq in self._running:
            self._running.remove(seq)
        if seq.slot is not None:  # its cache stays, for a request that starts the same way
            seq.slot.busy = False
            seq.slot = None
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None
        if item is not None:
            seq.out.put(item)

    def _new_sampler(self, seq: _Sequence) -> Any:
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        penalise = seq.repeat_penalty != 1.0
        if seq.temperature <= 0 and not penalise:
            sampler.add_greedy()
            return sampler
        # top-k first: the penalty then looks at 50 candidates, not the whole vocabulary
        sampler.add_top_k(TOP_K)
        if penalise:
            sampler.add_penalties(self._model.n_vocab(), REPEAT_WINDOW, seq.repeat_penalty, 0.0, 0.0)
        if seq.temperature <= 0:
            sampler.add_greedy()
        else:
            sampler.add_top_p(seq.top_p, 1)
            sampler.add_temp(seq.temperature)
            sampler.add_dist(seq.seed)
        return sampler

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._fast.token_to_piece(self._model.vocab, token, buf, len(buf), 0, False)
        if n < 0:  # a longer piece: -n is the size it needs
            buf = ctypes.create_string_buffer(-n)
            n = self._fast.token_to_piece(self._model.vocab, token, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)]

    def _piece_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model.token_get_text(token)


class _HeldGil:
    """The scheduler's short per-token calls, made without releasing the GIL.

    ctypes releases the GIL around every foreign call and must win it back afterwards; with
    request threads and Gradio's event loop wanting it too, each win can wait for a thread
    switch (up to ``sys.getswitchinterval()``, 5 ms), and the scheduler makes several such
    calls per answer per step. Sampling and detokenising take microseconds, so they keep the
    GIL (``PyDLL``); only ``llama_decode``, which takes milliseconds, lets it go.
    """

    def __init__(self, llama_cpp: Any) -> None:
        lib = ctypes.PyDLL(llama_cpp.llama_cpp._lib._name)
        self.sample = lib.llama_sampler_sample
        self.sample.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
        self.sample.restype = ctypes.c_int32
        self.token_to_piece = lib.llama_token_to_piece
        self.token_to_piece.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int32,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_int32,
            ctypes.c_bool,
        ]
        self.token_to_piece.restype = ctypes.c_int32
        self.logits_ith = lib.llama_get_logits_ith
        self.logits_ith.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        self.logits_ith.restype = ctypes.POINTER(ctypes.c_float)


_init_lock = threading.Lock()
_initialised = False


def _backend_init(llama_cpp: Any) -> None:
    global _initialised
    with _init_lock:
        if not _initialised:
            llama_cpp.llama_backend_init()
            _initialised = True


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _file_type(desc: str) -> str:
    """'llama ?B Q4_1' -> 'Q4_1': the quantisation is what a record should say."""
    parts = desc.split()
    return parts[-1] if parts else "gguf"
