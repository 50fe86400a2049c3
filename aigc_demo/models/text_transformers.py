"""Text engine: a transformers causal LM (Hub id or local directory), on the compute thread.

The GPU profile's engine, and the CPU fallback when llama.cpp is not installed (the
packaged SmolLM2 GGUF is then converted once to a transformers directory). ``stream``
runs ``generate`` on the one compute thread (models/compute.py explains why one) and can
be stopped early — by a stop string, or by the consumer closing the generator (Gradio does
that when the user presses Stop), which flips a flag that a ``StoppingCriteria`` checks
after every token so no compute is wasted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import ModelLoadError
from aigc_demo.models import compute, packaged, trained
from aigc_demo.models.base import GenerationStats, TextBackend, TextRequest, flatten_messages, split_prefill
from aigc_demo.models.device import pick_device, pick_dtype
from aigc_demo.models.streaming import VisibleText

log = logging.getLogger(__name__)

POLL_S = 0.03  # the consumer decodes new tokens at most ~33 times a second


class TransformersTextBackend(TextBackend):
    """A transformers causal LM, loaded from a local directory or a Hub id."""

    backend = "transformers"
    parallel = 1  # every request runs on the one compute thread

    def __init__(
        self,
        model_id: str,
        *,
        source: str | Path,
        device: str,
        dtype: Any,
        int8_weights: bool = False,
        precision: str = "",
        adapter: str | Path | None = None,
    ) -> None:
        self.model_id = model_id
        self.source = str(source)
        self.adapter = str(adapter) if adapter else None  # a LoRA trained here, merged at load
        self.device = device
        self.dtype = dtype
        self.int8_weights = int8_weights  # CPU decode speed: see models/quant.py
        self.precision = precision or str(dtype).removeprefix("torch.")
        self.model: Any = None
        self.tokenizer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, model_id: str, target: str) -> TransformersTextBackend:
        from aigc_demo.models.quant import resolve_precision

        device = pick_device(settings.device)
        dtype, int8_weights, label = resolve_precision(settings.text_precision, device, pick_dtype(device))
        adapter = None
        if trained.is_trained(model_id):  # trained:<name>: its base, with the adapter trained here
            card = trained.card(settings.data_dir, model_id)
            if card is None:
                raise ModelLoadError("trained_missing", model=model_id)
            target, adapter = card["base"], trained.folder(settings.data_dir, model_id) / "adapter"
        source = packaged.source(target, settings.cache_path)
        return cls(
            model_id,
            source=source,
            device=device,
            dtype=dtype,
            int8_weights=int8_weights,
            precision=label,
            adapter=adapter,
        )

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source)
            model = AutoModelForCausalLM.from_pretrained(self.source, dtype=self.dtype)
            if self.adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, self.adapter).merge_and_unload()
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the text model {self.model_id!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                "Set AIGC_TEXT_MODEL to a Hub id (needs network), a local model directory, "
                "or leave it empty for the embedded offline model."
            ) from exc
        model = model.to(self.device).eval()  # type: ignore[arg-type]  # transformers types .to's wrapper wrongly
        if self.int8_weights:
            from aigc_demo.models.quant import quantize_int8_weights

            layers = quantize_int8_weights(model, self.dtype)
            log.info("%s: %d linear layers with int8 weights", self.model_id, layers)
        self.model = model

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, request: TextRequest) -> Any:
        tok = self.tokenizer
        if request.messages is not None and self.has_chat_template:
            head, prefill = split_prefill(request.messages)
            if prefill:  # the template up to the answer, then its words so far (no end-of-turn)
                text = tok.apply_chat_template(head, add_generation_prompt=True, tokenize=False) + prefill
                enc = tok(text, return_tensors="pt", add_special_tokens=False)
            else:
                enc = tok.apply_chat_template(
                    request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
        else:
            text = request.prompt if request.prompt is not None else flatten_messages(request.messages or [])
            enc = tok(text, return_tensors="pt")
        enc = dict(enc)
        # Keep the prompt inside the context window: drop the oldest tokens, so the end of
        # a long conversation (the question) survives.
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit:
            budget = max(1, limit - request.max_new_tokens)
            if enc["input_ids"].shape[1] > budget:
                enc = {k: v[:, -budget:] for k, v in enc.items()}
        return {k: v.to(self.device) for k, v in enc.items()}

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Generator[str, None, None]:
        """Yield decoded text chunks; fill ``stats`` as generation proceeds.

        The generate thread only appends token ids (no decoding, no per-token wake-up);
        this consumer decodes what has arrived at most every ``POLL_S`` and yields the new
        text. transformers' TextIteratorStreamer decodes and queues every token, which on
        two cores cost ~9 % of decode throughput (bench/text_stream.py).
        """
        import torch

        stats = stats if stats is not None else GenerationStats()
        inputs = self.encode(request)
        stats.prompt_tokens = int(inputs["input_ids"].shape[1])
        cancel = threading.Event()
        arrived = threading.Event()  # set on the first token and at the end
        finished = threading.Event()
        ids: list[int] = []
        start = time.perf_counter()
        collector = _collector(ids, stats, start, arrived, finished)
        kwargs = self._generate_kwargs(request, inputs, collector, _stop_on(cancel))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    torch.manual_seed(request.seed)
                    self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - surfaced in the consumer thread
                errors.append(exc)
            finally:
                collector.end()

        worker = compute.submit(run)
        visible = VisibleText(request.stop)
        try:
            arrived.wait()
            yield from self._decode_arrivals(ids, finished, visible, stats)
        except GeneratorExit:
            if stats.finish_reason == "length":
                stats.finish_reason = "cancelled"
            raise
        finally:
            cancel.set()
            try:
                worker.result(timeout=60)
            except FuturesTimeout:
                log.error("generate() did not stop within 60 s of being cancelled")
            stats.total_ms = (time.perf_counter() - start) * 1000
            if stats.finish_reason != "stop":
                stats.completion_tokens = len(ids)
        if errors:
            raise errors[0]
        if stats.finish_reason == "length" and stats.completion_tokens < request.max_new_tokens:
            stats.finish_reason = "eos"

    def _generate_kwargs(
        self, request: TextRequest, inputs: dict[str, Any], streamer: Any, stopping_criteria: Any
    ) -> dict[str, Any]:
        """``generate``'s arguments for ``request``: its sampling, penalties and limits."""
        sample = request.temperature > 0
        kwargs: dict[str, Any] = dict(
            **inputs,
            max_new_tokens=request.max_new_tokens,
            do_sample=sample,
            streamer=streamer,
            stopping_criteria=stopping_criteria,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if request.repeat_penalty != 1.0:
            kwargs["repetition_penalty"] = request.repeat_penalty
        if request.min_new_tokens:
            kwargs["min_new_tokens"] = min(request.min_new_tokens, request.max_new_tokens)
        if sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p)
        else:  # greedy: silence the model's sampling defaults
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _decode_arrivals(
        self, ids: list[int], finished: threading.Event, visible: VisibleText, stats: GenerationStats
    ) -> Generator[str, None, None]:
        """Decode the token ids as the generate thread appends them; yield the new visible text.

        Ends at a stop string (``finish_reason`` "stop") or once generation has finished.
        """
        prefix_offset = read_offset = 0  # TGI-style incremental detokenisation window
        while True:
            done = finished.is_set()
            snapshot = ids[: len(ids)]
            before = self.tokenizer.decode(snapshot[prefix_offset:read_offset], skip_special_tokens=True)
            after = self.tokenizer.decode(snapshot[prefix_offset:], skip_special_tokens=True)
            # Decoding a small window and emitting the difference is robust to tokens
            # that only make sense together (multi-byte characters, merged spaces); a
            # window ending in U+FFFD waits for the rest of its character.
            if len(after) > len(before) and (done or not after.endswith("\ufffd")):
                prefix_offset, read_offset = read_offset, len(snapshot)
                stats.completion_tokens = len(snapshot)
                delta = visible.push(after[len(before) :])
                if delta:
                    yield delta
                if visible.stopped:
                    stats.finish_reason = "stop"
                    return
            if done:
                tail = visible.finish()
                if tail:
                    yield tail
                return
            finished.wait(POLL_S)


def _stop_on(cancel: threading.Event) -> Any:
    """Stopping criteria that end ``generate`` at the next token once ``cancel`` is set."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Cancelled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return cancel.is_set()

    return StoppingCriteriaList([_Cancelled()])


def _collector(
    ids: list[int], stats: GenerationStats, start: float, arrived: threading.Event, finished: threading.Event
) -> Any:
    """A streamer that appends the generated token ids to ``ids`` (no decoding), records the
    time to the first token in ``stats``, sets ``arrived`` on the first token and at the end,
    and ``finished`` at the end."""
    from transformers.generation.streamers import BaseStreamer

    class _Collector(BaseStreamer):
        prompt_seen = False

        def put(self, value):
            if not self.prompt_seen:  # generate() first puts the prompt
                self.prompt_seen = True
                return
            ids.extend(value.reshape(-1).tolist())  # list.extend is atomic under the GIL
            if stats.ttft_ms is None:
                stats.ttft_ms = (time.perf_counter() - start) * 1000
                arrived.set()

        def end(self):
            finished.set()
            arrived.set()

    return _Collector()
