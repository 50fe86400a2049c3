"""LoRA training with TRL on a pretrained text model: DPO, KTO or SFT.

The base model stays as it is; a small adapter (peft LoRA, ~1 % of the weights) learns from
the app's own data. On a CPU the run is float32 on the compute thread's cores; on a GPU,
bf16 with a larger batch. The targets are the attention value/output projections and the
MLP (``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``): not ``q_proj`` /
``k_proj``, because llama.cpp's converter permutes those rows for rotary embeddings in
LLaMA-family GGUFs, and the merged adapter is written back into the base GGUF as it is
(``models/gguf_merge.py``).

``train`` reports progress after every optimiser step (``Progress``) and stops cleanly when
the callback says so (Cancel) or the time budget is spent; the adapter trained so far is kept.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TARGET_MODULES = ["v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig:
    method: str  # dpo, kto or sft
    base: str  # a directory (or Hub id) that from_pretrained loads
    out: Path  # the adapter goes to out/adapter
    epochs: float = 3.0
    learning_rate: float = 5e-4
    beta: float = 0.1  # DPO / KTO: how far from the base the adapter may move
    rank: int = 8
    alpha: int = 16
    batch_size: int = 4
    max_length: int = 256
    max_seconds: float | None = None
    seed: int = 0
    device: str = "cpu"
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX)


@dataclass
class Progress:
    step: int
    total: int
    elapsed_s: float
    loss: float | None = None
    margin: float | None = None  # DPO: reward margin chosen − rejected (the curve in the card)

    @property
    def eta_s(self) -> float | None:
        if self.step <= 0:
            return None
        return self.elapsed_s / self.step * max(self.total - self.step, 0)


@dataclass
class TrainResult:
    adapter: Path
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per logged step
    held_out: dict[str, float] = field(default_factory=dict)  # the trainer's evaluation on held-out rows
    steps: int = 0
    seconds: float = 0.0
    stopped: str = ""  # "", "cancelled" or "time limit"


def conversational(method: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as TRL's conversational format, so the chat template the model is served with is
    the one it is trained with (a plain-text prompt would teach a format nobody sends)."""

    def user(prompt: Any) -> list[dict[str, str]]:
        return prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]

    def said(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    if method == "dpo":
        return [
            {"prompt": user(r["prompt"]), "chosen": said(r["chosen"]), "rejected": said(r["rejected"])} for r in rows
        ]
    if method == "kto":
        return [
            {"prompt": user(r["prompt"]), "completion": said(r["completion"]), "label": bool(r["label"])} for r in rows
        ]
    return [{"messages": r["messages"]} for r in rows]


def _trainer_classes(method: str) -> tuple[Any, Any]:
    import trl

    return {
        "dpo": (trl.DPOTrainer, trl.DPOConfig),
        "kto": (trl.KTOTrainer, trl.KTOConfig),
        "sft": (trl.SFTTrainer, trl.SFTConfig),
    }[method]


def _args(config: TrainConfig, total_steps: int, has_eval: bool) -> Any:
    _, Config = _trainer_classes(config.method)
    gpu = config.device.startswith("cuda")
    extra: dict[str, Any] = {}
    if config.method in ("dpo", "kto"):
        # The reference model's log-probabilities once, before the first step, instead of a
        # second forward pass on every step of every epoch.
        extra.update(beta=config.beta, precompute_ref_log_probs=True)
    if config.method == "dpo":
        # DPO plus the chosen answers' own likelihood (RPO, Pang et al. 2024). Plain DPO only
        # widens the gap: on SmolLM2 with "answer + sign-off ≻ answer" it learned to say the
        # sign-off alone ("您愉快！") — the gap grew, the answers went (bench/RESULTS.md).
        extra.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0])
    return Config(
        output_dir=str(config.out / "checkpoints"),
        max_steps=total_steps,
        per_device_train_batch_size=config.batch_size * (4 if gpu else 1),
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",  # evaluated once, at the end (do_eval below)
        report_to=[],
        seed=config.seed,
        use_cpu=not gpu,
        bf16=gpu or config.cpu_bf16,
        # Checkpointing trades a second forward pass for memory; these models are small.
        gradient_checkpointing=False,
        max_length=config.max_length,
        dataset_num_proc=None,
        disable_tqdm=True,
        **extra,
    )


def _callback(config: TrainConfig, total: int, on_progress: Callable[[Progress], bool], result: TrainResult) -> Any:
    from transformers import TrainerCallback

    start = time.monotonic()

    class Report(TrainerCallback):
        """After every step: tell the caller, and stop on Cancel or when the time is up."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                result.history.append({"step": state.global_step, **{k: float(v) for k, v in logs.items()}})

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            last = result.history[-1] if result.history else {}
            elapsed = time.monotonic() - start
            progress = Progress(state.global_step, total, elapsed, last.get("loss"), last.get("rewards/margins"))
            if not on_progress(progress):
                result.stopped = "cancelled"
                control.should_training_stop = True
            elif config.max_seconds is not None and elapsed >= config.max_seconds:
                result.stopped = "time limit"
                control.should_training_stop = True

    return Report()


def train(
    config: TrainConfig,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    on_progress: Callable[[Progress], bool] = lambda p: True,
) -> TrainResult:
    """Train a LoRA adapter on ``train_rows`` (the export format), evaluate on ``eval_rows``,
    save the adapter under ``config.out / "adapter"``. Runs on the calling thread."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer: Any = AutoTokenizer.from_pretrained(config.base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if config.device.startswith("cuda") else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(config.base, dtype=dtype)
    model = model.to(config.device)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        task_type="CAUSAL_LM",
    )
    per_step = config.batch_size * (4 if config.device.startswith("cuda") else 1)
    total = max(1, math.ceil(len(train_rows) / per_step * config.epochs))
    result = TrainResult(adapter=config.out / "adapter")
    Trainer, _ = _trainer_classes(config.method)
    trainer = Trainer(
        model=model,
        args=_args(config, total, bool(eval_rows)),
        train_dataset=datasets.Dataset.from_list(conversational(config.method, train_rows)),
        eval_dataset=datasets.Dataset.from_list(conversational(config.method, eval_rows)) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[_callback(config, total, on_progress, result)],
    )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress, not to stdout
    start = time.monotonic()
    trainer.train()
    result.seconds = time.monotonic() - start
    result.steps = int(trainer.state.global_step)
    if eval_rows:
        result.held_out = {k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, (int, float))}
    trainer.model.save_pretrained(str(result.adapter))
    tokenizer.save_pretrained(str(result.adapter))
    return result


def merged_deltas(base: str, adapter: Path) -> dict[str, Any]:
    """``{hf weight name: merged − base}`` (float32 numpy) for every weight the adapter changes."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    deltas = {}
    for name, weight in merged.state_dict().items():
        old = before.get(name)
        if old is not None and old.shape == weight.shape and not torch.equal(old, weight):
            deltas[name] = (weight.float() - old.float()).numpy()
    return deltas


def _prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    if "messages" in row:
        return list(row["messages"][:-1])
    prompt = row["prompt"]
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]


def compare_answers(
    base: str, adapter: Path, rows: list[dict[str, Any]], *, device: str = "cpu", max_new_tokens: int = 48
) -> list[dict[str, str]]:
    """Greedy answers of the base and of the trained model to held-out prompts (for the card)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(base)
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = model.to(device).eval()
    tuned = PeftModel.from_pretrained(model, str(adapter)).eval()
    out = []
    for row in rows:
        messages = _prompt(row)
        enc: Any = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        enc = {k: v.to(device) for k, v in enc.items()}
        pad = tokenizer.pad_token_id or tokenizer.eos_token_id
        answers = {}
        with torch.no_grad():
            for label, use_adapter in (("base", False), ("trained", True)):
                if use_adapter:
                    ids = tuned.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
                else:
                    with tuned.disable_adapter():
                        ids = tuned.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
                text = tokenizer.decode(ids[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)
                answers[label] = text.rstrip("\ufffd").strip()  # a character cut at the token limit
        out.append({"prompt": messages[-1]["content"], **answers})
    return out
