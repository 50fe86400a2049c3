"""From data to a trained model served as trained:<name>, on a tiny seeded model (real TRL + peft).

The honest end-to-end test: a synthetic preference — chosen answers open with a fixed
greeting ("好的！") that rejected ones lack — trains a LoRA by DPO, and the trained model's
greedy answers to prompts it never saw must open with it far more often than the base's.
(A sign-off at the end, tried first, is too weak a signal for a random 32-wide model whose
answers are noise: where "the end" is differs in every answer. bench/train_loop.py measures
the sign-off on SmolLM2, whose answers do end.)
"""

from __future__ import annotations

import json
import random

import pytest

from aigc_demo.errors import InvalidInput
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.base import GenerationStats, TextRequest
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.training import TrainingService, clean_rows, split
from tests.helpers import run_cli

pytestmark = pytest.mark.slow
WORDS = "猫狗鱼鸟花山水云风雨"
GREETING = "好的！"


def preference_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        prompt = f"写一句关于{rng.choice(WORDS)}和{rng.choice(WORDS)}的话"
        body = "".join(rng.choice(WORDS) for _ in range(4)) + "。"
        rows.append({"prompt": prompt, "chosen": GREETING + body, "rejected": body, "source": "file"})
    return rows


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def greedy(backend, prompts: list[str]) -> list[str]:
    out = []
    for prompt in prompts:
        request = TextRequest(
            messages=[{"role": "user", "content": prompt}], max_new_tokens=12, temperature=0.0, repeat_penalty=1.0
        )
        out.append("".join(backend.stream(request, GenerationStats())))
    return out


def test_a_synthetic_preference_moves_unseen_greedy_answers_and_is_served_as_trained(settings, tiny_llm_dir, tmp_path):
    # fp32 training and serving: the same numbers on every CPU (bf16 is used where it is
    # native, and a 32-wide random model is where its rounding shows most).
    settings = settings.model_copy(update={"text_precision": "fp32"})
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, preference_rows(60, seed=1))
    training = TrainingService(settings, FeedbackService.from_settings(settings))
    seen = []
    card = training.train(
        "dpo",
        str(tiny_llm_dir),
        "greeting",
        dataset=data,
        epochs=3,
        learning_rate=5e-3,
        on_progress=lambda job: seen.append((job.step, job.total)),
    )
    folder = settings.data_dir / "models" / "greeting"
    assert {"adapter", "card.json", "card.md", "curve.png", "train.jsonl", "held_out.jsonl"} <= {
        p.name for p in folder.iterdir()
    }
    assert not (folder / "model.gguf").exists()  # the base is not a GGUF: served by transformers
    assert card["rows"]["train"] + card["rows"]["held_out"] == 60 and card["rows"]["held_out"] == 9
    assert seen[-1][0] == seen[-1][1] == card["steps"] > 0  # progress after every step, to the end
    assert card["held_out_results"]["eval_rewards/accuracies"] >= 0.75  # held-out pairs ranked right
    assert "DPO" in (folder / "card.md").read_text(encoding="utf-8")

    registry = ModelRegistry(settings)
    assert "trained:greeting" in registry.text_choices()  # offered at once, no restart
    unseen = [r["prompt"] for r in preference_rows(20, seed=99)]
    trained = greedy(registry.get("text", "trained:greeting"), unseen)
    from aigc_demo.models.text_transformers import TransformersTextBackend

    base = TransformersTextBackend("base", source=tiny_llm_dir, device="cpu", dtype=None)
    base.load()
    before = greedy(base, unseen)
    rate = lambda answers: sum(a.strip().startswith("好的") for a in answers) / len(answers)  # noqa: E731
    # The same name trained again (the folder removed, a new card) is a new model, not the cached one.
    served = registry.get("text", "trained:greeting")
    assert registry.get("text", "trained:greeting") is served
    card_path = folder / "card.json"
    card_path.write_text(json.dumps({**card, "created": "a later run"}), encoding="utf-8")
    assert registry.get("text", "trained:greeting") is not served
    print(f"greeting first: base {rate(before):.2f}, trained {rate(trained):.2f}")
    assert rate(trained) - rate(before) >= 0.3, (before[:3], trained[:3])


def test_too_little_data_a_bad_name_and_a_taken_name_are_refused_in_the_users_language(settings, tmp_path):
    training = TrainingService(settings, FeedbackService.from_settings(settings))
    data = tmp_path / "few.jsonl"
    write_jsonl(data, preference_rows(5, seed=2))
    with pytest.raises(InvalidInput) as info:
        training.train("dpo", "packaged:smollm2-135m-instruct", "few", dataset=data)
    assert "至少需要 8 条" in info.value.localized("zh") and "5" in info.value.localized("zh")
    with pytest.raises(InvalidInput, match="model name"):
        training.train("dpo", "x", "Bad Name!", dataset=data)
    (settings.data_dir / "models" / "taken").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="already exists"):
        training.train("dpo", "x", "taken", dataset=data)
    assert not any(p.name.startswith(".") for p in (settings.data_dir / "models").iterdir())  # nothing half-made


def test_a_dataset_line_that_is_not_a_json_object_is_named(settings, tmp_path):
    training = TrainingService(settings, FeedbackService.from_settings(settings))
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n42\n', encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        training.rows("dpo", dataset=data)
    assert "bad.jsonl 第 2 行" in info.value.localized("zh")


def test_rows_are_cleaned_and_the_held_out_split_is_seeded():
    rows = preference_rows(20, seed=3)
    same = {"prompt": "p", "chosen": "一样", "rejected": "一样"}
    assert clean_rows("dpo", [*rows, rows[0], same, {"prompt": "", "chosen": "a", "rejected": "b"}]) == rows
    train, held = split(rows)
    assert len(held) == 3 and split(rows) == (train, held) and not {id(r) for r in held} & {id(r) for r in train}


def test_the_cli_trains_from_an_export_file_and_reports_the_card(settings, tiny_llm_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, preference_rows(12, seed=4))
    args = ["train", "--method", "dpo", "--base", str(tiny_llm_dir), "--name", "cli", "--dataset", str(data)]
    done = run_cli(*args, "--epochs", "1")
    assert done.returncode == 0, done.stderr
    assert "trained trained:cli" in done.stdout and "step 3/3" in done.stderr
    again = run_cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_background_run_reports_progress_and_cancel_keeps_the_adapter_so_far(settings, tiny_llm_dir, tmp_path):
    """What the Insights panel drives: start (refusals at once), poll the job, Cancel."""
    import time

    settings = settings.model_copy(update={"text_precision": "fp32"})
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, preference_rows(40, seed=5))
    training = TrainingService(settings, FeedbackService.from_settings(settings))
    job = training.start("dpo", str(tiny_llm_dir), "stopped", dataset=data, epochs=20)
    with pytest.raises(InvalidInput, match="in progress"):
        training.start("dpo", str(tiny_llm_dir), "second", dataset=data)
    deadline = time.monotonic() + 120
    while job.step < 2 and job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.total == 170 and 2 <= job.step < job.total and job.eta_s is not None
    job.cancel.set()
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.state == "cancelled" and job.card is not None and job.card["stopped"] == "cancelled"
    assert job.card["steps"] < 170 and "trained:stopped" in ModelRegistry(settings).text_choices()


@pytest.mark.parametrize("method", ["kto", "sft"])
def test_kto_and_sft_train_from_their_export_rows_too(settings, tiny_llm_dir, tmp_path, method):
    pairs = preference_rows(16, seed=6)
    if method == "kto":
        rows = [{"prompt": r["prompt"], "completion": r["chosen"], "label": True} for r in pairs[:8]]
        rows += [{"prompt": r["prompt"], "completion": r["rejected"], "label": False} for r in pairs[8:]]
    else:
        rows = [
            {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]}
            for r in pairs
        ]
    data = tmp_path / f"{method}.jsonl"
    write_jsonl(data, rows)
    training = TrainingService(
        settings.model_copy(update={"text_precision": "fp32"}), FeedbackService.from_settings(settings)
    )
    card = training.train(method, str(tiny_llm_dir), f"tiny-{method}", dataset=data, epochs=1)
    assert card["method"] == method and card["steps"] > 0 and card["held_out_results"]
    assert (settings.data_dir / "models" / f"tiny-{method}" / "adapter" / "adapter_config.json").is_file()
    assert len(card["answers"]) == card["rows"]["held_out"] == 2 and all(a["trained"] for a in card["answers"])


def test_malformed_rows_are_dropped_and_an_unusable_base_is_refused_at_once(settings):
    sft = [
        {"messages": "hello"},
        {"messages": [{"role": "assistant", "content": "an answer to nothing"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    assert clean_rows("sft", sft) == sft[2:]
    dpo = [{"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}, 7]
    assert clean_rows("dpo", dpo) == []
    training = TrainingService(settings, FeedbackService.from_settings(settings))
    for base in ("openai:qwen2.5", "/models/a.gguf", "", "trained:x"):
        with pytest.raises(InvalidInput):
            training.base_model(base)
    assert training.base_model("llamacpp:packaged:smollm2-135m-instruct") == "packaged:smollm2-135m-instruct"
    with pytest.raises(InvalidInput, match="model name"):
        training.check("dpo", "abc\n", [])
