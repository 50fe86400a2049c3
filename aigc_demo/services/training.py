"""Train a LoRA adapter from the app's own data and serve it as ``trained:<name>``.

One call goes from the stored signals (``feedback/training_data.py``) or an export file to a
model every tab can use: rows are checked (empty and identical pairs dropped, duplicates
merged), a seeded held-out split is kept aside, TRL trains on the compute thread
(``models/lora.py``), and ``DATA_DIR/models/<name>/`` receives

* ``adapter/`` — the LoRA weights (peft) and the tokenizer;
* ``model.gguf`` — the base GGUF with the adapter merged in, when the base is a GGUF
  (``models/gguf_merge.py``): llama.cpp serves it as fast as the base;
* ``card.md`` / ``card.json`` — base, method, data counts by source and every record id,
  hyper-parameters, the held-out results, base-vs-trained answers, time and hardware;
* ``curve.png`` — loss (and DPO's reward margin) per step; ``train.jsonl`` / ``held_out.jsonl``.

The folder is built under a temporary name and renamed when complete, so the registry never
sees half a model; ``ModelRegistry.text_choices`` lists it at once, without a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, InvalidInput, Items, Msg, Term
from aigc_demo.feedback import training_data
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models import compute, packaged
from aigc_demo.models.device import zero_gpu
from aigc_demo.models.trained import CARD, TRAINED_PREFIX, models_dir

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")  # fullmatch: the whole name, no trailing newline
MIN_ROWS = 8  # below this a held-out split and a run say nothing
HELD_OUT = 0.15
SHOWN_ANSWERS = 4  # held-out prompts answered by base and trained model in the card


@dataclass
class Job:
    """A training run the UI can follow and cancel."""

    name: str
    method: str
    base: str
    step: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    loss: float | None = None
    state: str = "running"  # running, done, cancelled, failed
    message: str = ""
    card: dict[str, Any] | None = None  # once done: what card.json holds
    error: AigcError | None = None  # once failed: shown in the page's language
    cancel: threading.Event = field(default_factory=threading.Event)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _chat(messages: Any) -> bool:
    """A conversation TRL can train on: role/content dicts, a user turn, an answer last."""
    if not isinstance(messages, list) or len(messages) < 2:
        return False
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and _text(m.get("content")) for m in messages):
        return False
    return messages[-1]["role"] == "assistant" and any(m["role"] == "user" for m in messages[:-1])


FIELDS = {"dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion"), "sft": ("messages",)}


def _usable(method: str, row: Any) -> bool:
    if not isinstance(row, dict):
        return False
    if method == "sft":
        return _chat(row.get("messages"))
    if not all(_text(row.get(k)) for k in FIELDS[method]):
        return False
    if method == "kto":
        return isinstance(row.get("label"), bool)
    return row["chosen"] != row["rejected"]  # a pair that prefers an answer to itself teaches nothing


def clean_rows(method: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Usable rows only (texts where texts belong, a well-formed conversation for SFT), no
    pair whose two answers are the same, no duplicates."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if not _usable(method, row):
            continue
        key = json.dumps([row.get(k) for k in (*FIELDS[method], "label")], ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def split(rows: list[dict[str, Any]], seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out): a seeded shuffle, 15 % held out (at least 2 rows)."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    n = max(2, round(len(shuffled) * HELD_OUT))
    return shuffled[n:], shuffled[:n]


def read_dataset(path: Path, method: str) -> list[dict[str, Any]]:
    """An export file (JSONL, the format ``export --format <method>`` writes)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        row = None
                    if not isinstance(row, dict):
                        raise InvalidInput("dataset_bad_line", file=path.name, line=number)
                    rows.append(row)
    except OSError as exc:
        raise InvalidInput("dataset_unreadable", file=str(path), error=type(exc).__name__) from exc
    return rows


class TrainingService:
    def __init__(self, settings: Settings, feedback: FeedbackService) -> None:
        self.settings = settings
        self.feedback = feedback
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return models_dir(self.settings.data_dir)

    # -- data --------------------------------------------------------------------------------

    def rows(self, method: str, *, dataset: Path | None = None, **filters: Any) -> list[dict[str, Any]]:
        """The rows ``method`` trains on: from ``dataset`` or from every stored signal."""
        if method not in training_data.METHODS:
            raise InvalidInput("train_bad_method", got=repr(method), known=", ".join(training_data.METHODS))
        if dataset is not None:
            return read_dataset(Path(dataset), method)
        read = self.feedback.read
        return training_data.build(
            method,
            read("ratings").records,
            votes=[v for v in read("arena").records if v.get("type") == "arena_vote"],
            handoffs=read("handoffs").records,
            handoff_updates=read("handoff_updates").records,
            events=read("events").records,
            **{k: v for k, v in filters.items() if v},
        )

    def check(self, method: str, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Usable rows, or a clear refusal: a bad or taken name, too little data."""
        if not NAME.fullmatch(name or ""):
            raise InvalidInput("train_bad_name", got=repr(str(name)[:60]))
        if (self.folder / name).exists():
            raise InvalidInput("train_name_taken", name=name)
        usable = clean_rows(method, rows)
        if len(usable) < MIN_ROWS:
            found = Items(
                Msg("source_count", source=Term(f"source {k}"), n=v) for k, v in training_data.sources(usable).items()
            )
            raise InvalidInput(
                "train_too_little",
                method=method.upper(),
                n=len(usable),
                need=MIN_ROWS,
                found=found if found.items else "0",
            )
        if method == "kto" and len({r["label"] for r in usable}) < 2:
            raise InvalidInput("train_kto_one_label")
        return usable

    # -- the run -----------------------------------------------------------------------------

    @staticmethod
    def base_model(base: str) -> str:
        """The base as training needs it: a packaged model, a local folder or a Hub id, without
        an engine prefix (``llamacpp:packaged:x`` → ``packaged:x``). A remote server's model
        (``openai:``), a bare GGUF file or a trained model cannot be the base of a LoRA here."""
        from aigc_demo.models.registry import split_engine

        if not (base or "").strip():
            raise InvalidInput("train_base_unusable", base="''")
        if base.startswith(TRAINED_PREFIX):
            raise InvalidInput("train_base_trained")
        try:
            engine, target = split_engine("text", base.strip())
        except ValueError:
            raise InvalidInput("train_base_unusable", base=repr(base[:80])) from None
        if engine == "openai" or (target.endswith(".gguf") and not packaged.is_packaged(target)):
            raise InvalidInput("train_base_unusable", base=repr(base[:80]))
        return target

    def base_dir(self, base: str) -> str:
        """What ``from_pretrained`` loads for ``base`` (a packaged model is converted once)."""
        return packaged.source(self.base_model(base), self.settings.cache_path)

    def base_gguf(self, base: str) -> Path | None:
        """The base's GGUF, when it has one (then llama.cpp can serve the trained model)."""
        target = self.base_model(base)
        if packaged.is_packaged(target) and packaged.is_gguf(target.removeprefix(packaged.PACKAGED_PREFIX)):
            return packaged.gguf_file(target.removeprefix(packaged.PACKAGED_PREFIX), self.settings.cache_path)
        return None

    def train(
        self,
        method: str,
        base: str,
        name: str,
        *,
        dataset: Path | None = None,
        max_minutes: float | None = None,
        epochs: float = 3.0,
        learning_rate: float | None = None,
        on_progress: Callable[[Job], None] | None = None,
        job: Job | None = None,
        **filters: Any,
    ) -> dict[str, Any]:
        """Train, write the model folder, return its card (``card.json``). Blocks until done."""
        base = self.base_model(base)
        rows = self.check(method, name, self.rows(method, dataset=dataset, **filters))
        job = job or Job(name, method, base)
        with self._lock:
            self.jobs[name] = job
        try:
            card = compute.run(lambda: self._run(job, rows, epochs, learning_rate, max_minutes, on_progress))
        except AigcError as exc:
            job.state, job.message, job.error = "failed", exc.message, exc
            raise
        except Exception as exc:
            log.exception("training %s failed", name)
            job.error = AigcError("train_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            job.state, job.message = "failed", job.error.message
            raise job.error from exc
        job.card = card
        job.state = "cancelled" if card["stopped"] == "cancelled" else "done"
        return card

    # On a ZeroGPU Space the run holds a GPU for its time limit (default 10 minutes), as
    # generation does for its own estimate (models/device.zero_gpu); elsewhere a no-op.
    @zero_gpu(duration=lambda self, job, rows, epochs, lr, max_minutes, on_progress: int((max_minutes or 10) * 60) + 60)
    def _run(
        self,
        job: Job,
        rows: list[dict[str, Any]],
        epochs: float,
        learning_rate: float | None,
        max_minutes: float | None,
        on_progress: Callable[[Job], None] | None,
    ) -> dict[str, Any]:
        from aigc_demo.models import lora
        from aigc_demo.models.device import pick_device
        from aigc_demo.models.quant import int8_supported

        train_rows, held_out = split(rows)
        with self._work_folder(job.name) as work:
            device = pick_device(self.settings.device)
            config = lora.TrainConfig(
                method=job.method,
                base=self.base_dir(job.base),
                out=work,
                epochs=epochs,
                learning_rate=learning_rate or (5e-4 if job.method != "sft" else 2e-4),
                max_seconds=max_minutes * 60 if max_minutes else None,
                device=device,
                # bf16 autocast on a CPU with native bf16 (faster steps), unless fp32 is asked for.
                cpu_bf16=device == "cpu" and self.settings.text_precision != "fp32" and int8_supported(),
            )

            def progress(p: lora.Progress) -> bool:
                job.step, job.total, job.elapsed_s, job.eta_s, job.loss = p.step, p.total, p.elapsed_s, p.eta_s, p.loss
                if on_progress is not None:
                    on_progress(job)
                return not job.cancel.is_set()

            started = time.time()
            result = lora.train(config, train_rows, held_out, progress)
            gguf = self.base_gguf(job.base)
            if gguf is not None:
                from aigc_demo.models.gguf_merge import merge_into_gguf

                merge_into_gguf(gguf, lora.merged_deltas(config.base, result.adapter), work / "model.gguf")
            answers = lora.compare_answers(config.base, result.adapter, held_out[:SHOWN_ANSWERS], device=device)
            card = self._card(job, config, rows, train_rows, held_out, result, answers, time.time() - started, gguf)
            for file_name, part in (("train.jsonl", train_rows), ("held_out.jsonl", held_out)):
                with open(work / file_name, "w", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
            write_curve(result.history, work / "curve.png")
            (work / CARD).write_text(json.dumps(card, ensure_ascii=False, indent=1), encoding="utf-8")
            (work / "card.md").write_text(card_markdown(card), encoding="utf-8")
            shutil.rmtree(work / "checkpoints", ignore_errors=True)
            target = self.folder / job.name
            if target.exists():  # another process finished the same name first
                raise InvalidInput("train_name_taken", name=job.name)
            work.rename(target)  # complete: the registry sees it from now on
            return card

    @contextlib.contextmanager
    def _work_folder(self, name: str) -> Iterator[Path]:
        """A hidden folder of its own (two processes training one name never share one),
        removed when the run fails; the caller renames it into place when complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=self.folder))
        try:
            yield work
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def _card(
        self,
        job: Job,
        config: Any,
        rows: list[dict[str, Any]],
        train_rows: list[dict[str, Any]],
        held_out: list[dict[str, Any]],
        result: Any,
        answers: list[dict[str, str]],
        seconds: float,
        gguf: Path | None,
    ) -> dict[str, Any]:
        import torch

        hyper = {k: v for k, v in asdict(config).items() if k not in ("out", "base", "method")}
        return {
            "name": job.name,
            "model_id": TRAINED_PREFIX + job.name,
            "base": job.base,
            "method": job.method,
            "rows": {"train": len(train_rows), "held_out": len(held_out), "by_source": training_data.sources(rows)},
            "record_ids": sorted({i for r in rows for i in r.get("record_ids") or [] if i}),
            "hyper_parameters": {**hyper, "target_modules": list(lora_targets())},
            "steps": result.steps,
            "stopped": result.stopped,
            "history": result.history,
            "held_out_results": result.held_out,
            "answers": answers,
            "seconds": round(seconds, 1),
            "hardware": {
                "device": config.device,
                "cpu": cpu_name(),
                "threads": torch.get_num_threads(),
                "gpu": torch.cuda.get_device_name(0) if config.device.startswith("cuda") else None,
            },
            "gguf": gguf is not None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    # -- background runs (the Insights panel) --------------------------------------------------

    def start(self, method: str, base: str, name: str, *, filters: dict[str, Any] | None = None, **options: Any) -> Job:
        """Check the request at once (a refusal is immediate), then train in the background."""
        filters = filters or {}
        base = self.base_model(base)
        self.check(method, name, self.rows(method, dataset=options.get("dataset"), **filters))
        with self._lock:
            if any(j.state == "running" for j in self.jobs.values()):
                raise InvalidInput("train_busy")
            job = self.jobs[name] = Job(name, method, base)

        def run() -> None:
            try:
                self.train(method, base, name, job=job, **filters, **options)
            except AigcError as exc:
                job.state, job.message, job.error = "failed", exc.message, exc
            except Exception as exc:
                log.exception("training %s failed", name)
                job.error = AigcError("train_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                job.state, job.message = "failed", job.error.message

        threading.Thread(target=run, name=f"train-{name}", daemon=True).start()
        return job


def cpu_name() -> str:
    """The CPU model ("AMD EPYC …"), as /proc/cpuinfo names it; the architecture elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The held-out figures a reader compares across runs (the trainer reports speed and more).
CARD_METRICS = (
    "eval_rewards/accuracies",
    "eval_rewards/margins",
    "eval_rewards/chosen",
    "eval_rewards/rejected",
    "eval_loss",
    "eval_mean_token_accuracy",
)


def lora_targets() -> tuple[str, ...]:
    from aigc_demo.models.lora import TARGET_MODULES

    return tuple(TARGET_MODULES)


def card_markdown(card: dict[str, Any]) -> str:
    """The model card a person reads (``card.json`` holds the same, for tools)."""
    held = card["held_out_results"]
    metrics = "\n".join(f"| {k.removeprefix('eval_')} | {held[k]:.4g} |" for k in CARD_METRICS if k in held)
    answers = "\n\n".join(
        f"**Prompt:** {a['prompt']}\n\n- base: {a['base']}\n- trained: {a['trained']}" for a in card["answers"]
    )
    sources = ", ".join(f"{k} {v}" for k, v in card["rows"]["by_source"].items())
    hardware = card["hardware"]
    served = "by llama.cpp (`model.gguf`)" if card["gguf"] else "by transformers (base + adapter)"
    ids = card["record_ids"]
    lineage = f"{len(ids)} stored records (their ids in `card.json`)" if ids else "from a dataset file (`train.jsonl`)"
    return f"""# {card["model_id"]}

A LoRA adapter on `{card["base"]}`, trained by {card["method"].upper()} (TRL + peft) on this app's own data.

- Data: {card["rows"]["train"]} training rows, {card["rows"]["held_out"]} held out ({sources});
  {lineage}.
- Run: {card["steps"]} steps in {card["seconds"]} s on {hardware["gpu"] or hardware["cpu"]} \
({hardware["device"]}, {hardware["threads"]} threads){"; stopped: " + card["stopped"] if card["stopped"] else ""}.
- Served as `{card["model_id"]}` {served}.
- Hyper-parameters: `{json.dumps(card["hyper_parameters"])}`

## Held-out results

| metric | value |
|---|---|
{metrics}

![loss](curve.png)

## Held-out prompts, base and trained (greedy)

{answers}
"""


def write_curve(history: list[dict[str, float]], out: Path) -> None:
    """Loss (blue) and, for DPO, the reward margin (orange) per step, as a small PNG."""
    from PIL import Image, ImageDraw

    width, height, pad = 640, 320, 36
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad // 2, width - pad // 2, height - pad], outline="#888")
    series = [("loss", "#3366cc"), ("rewards/margins", "#ff8800")]
    steps = [h.get("step", i + 1) for i, h in enumerate(history)]
    for key, colour in series:
        values = [h[key] for h in history if key in h]
        if len(values) < 2:
            continue
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        points = [
            (
                pad + (width - 1.5 * pad) * (s - steps[0]) / max(steps[-1] - steps[0], 1),
                height - pad - (height - 1.5 * pad) * (v - low) / span,
            )
            for s, v in zip(steps, values, strict=False)
        ]
        draw.line(points, fill=colour, width=2)
        draw.text(
            (pad + 4, pad // 2 + 4 + 14 * series.index((key, colour))),
            f"{key}: {values[0]:.3g} → {values[-1]:.3g}",
            fill=colour,
        )
    draw.text((pad, height - pad + 8), f"steps 1-{steps[-1] if steps else 0}", fill="#444")
    image.save(out)
