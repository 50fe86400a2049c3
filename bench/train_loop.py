"""The loop closed on a real model: preference pairs → DPO LoRA → served as trained:<name> → measured.

A synthetic preference stands for what testers prefer: answers that end with a sign-off
(zh: "祝您生活愉快！", en: "Have a nice day!"). The base model answers each training prompt
(llama.cpp, sampled); the chosen answer is that answer plus the sign-off, the rejected one the
answer alone, so the pair differs only in the trait. Then the app's own training service
trains (TRL DPO + peft LoRA on the compute thread), merges the adapter into the base GGUF,
and the registry serves ``trained:<name>`` like any model. The measure: greedy answers to
prompts neither training nor the held-out split saw, base vs trained, the share that carry
the sign-off. zh first: two prompts in three are Chinese.

    python bench/train_loop.py [--model packaged:smollm2-135m-instruct] [--pairs 120] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import record

SIGN_OFF = {"zh": "祝您生活愉快！", "en": "Have a nice day!"}
TOPICS_ZH = (
    "咖啡 雨伞 跑步 熊猫 地铁 茶叶 手机 长城 饺子 月亮 图书馆 自行车 春天 西湖 快递 围巾 空调 电影 钢琴 火锅".split()
)
TOPICS_EN = ["coffee", "umbrellas", "running", "pandas", "the subway", "tea", "phones", "bread", "the moon", "spring"]
# Unseen prompts ask about topics no training prompt names.
UNSEEN_ZH = "书包 台灯 爬山 海豚 公交车 牛奶 相机 故宫 包子 星星 博物馆 滑板 秋天 黄山 外卖".split()
UNSEEN_EN = ["backpacks", "lamps", "hiking", "dolphins", "buses", "milk", "cameras", "stars"]
ASKS_ZH = ["用一句话介绍{t}。", "请简单说说{t}有什么好处。", "给{t}写一句广告语。", "{t}适合什么人？"]
ASKS_EN = ["Describe {t} in one sentence.", "What is good about {t}?", "Write a slogan for {t}."]


def prompts(n: int, seed: int, *, unseen: bool = False) -> list[tuple[str, str]]:
    """(language, prompt) pairs; two in three Chinese."""
    rng = random.Random(seed)
    zh, en = (UNSEEN_ZH, UNSEEN_EN) if unseen else (TOPICS_ZH, TOPICS_EN)
    out = []
    for i in range(n):
        if i % 3 < 2:
            out.append(("zh", rng.choice(ASKS_ZH).format(t=rng.choice(zh))))
        else:
            out.append(("en", rng.choice(ASKS_EN).format(t=rng.choice(en))))
    return out


def answer(backend, prompt: str, *, temperature: float, seed: int, tokens: int) -> str:
    from aigc_demo.models.base import GenerationStats, TextRequest

    request = TextRequest(
        messages=[{"role": "user", "content": prompt}], max_new_tokens=tokens, temperature=temperature, seed=seed
    )
    return "".join(backend.stream(request, GenerationStats())).strip()


def has_trait(text: str) -> bool:
    """Ends with the sign-off (its core words in the last 20 characters), after an answer of
    at least 10 characters: a reply that is only the sign-off does not count."""
    return signs_off(text) and _answer_len(text) >= 10


def signs_off(text: str) -> bool:
    return any(c in text.strip()[-20:] for c in ("愉快", "nice day"))


def _answer_len(text: str) -> int:
    body = text
    for s in (*SIGN_OFF.values(), "祝您", "愉快", "Have a nice day"):
        body = body.replace(s, "")
    return len(body.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=120)
    parser.add_argument("--unseen", type=int, default=30)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.training import TrainingService

    data_dir = Path(tempfile.mkdtemp(prefix="train-loop-"))
    settings = Settings(data_dir=data_dir, cache_dir=Path("data/cache").resolve(), preload=False)
    registry = ModelRegistry(settings)
    base = registry.get("text", args.model) if args.model in registry.text_choices() else None
    if base is None:
        raise SystemExit(f"{args.model} is not offered here (text choices: {registry.text_choices()})")
    t0 = time.perf_counter()
    rows = []
    for i, (lang, prompt) in enumerate(prompts(args.pairs, seed=1)):
        said = answer(base, prompt, temperature=0.7, seed=i, tokens=48)
        rows.append({"prompt": prompt, "chosen": f"{said} {SIGN_OFF[lang]}", "rejected": said, "source": "bench"})
    t_data = time.perf_counter() - t0
    dataset = data_dir / "pairs.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    training = TrainingService(settings, FeedbackService.from_settings(settings))
    t1 = time.perf_counter()
    card = training.train("dpo", args.model, "sign-off", dataset=dataset, epochs=args.epochs)
    t_train = time.perf_counter() - t1
    trained_id = card["model_id"]
    served = ModelRegistry(settings)
    t2 = time.perf_counter()
    trained = served.get("text", trained_id)
    t_load = time.perf_counter() - t2
    unseen = list(dict.fromkeys(prompts(args.unseen * 2, seed=777, unseen=True)))[: args.unseen]
    before = [answer(base, p, temperature=0.0, seed=0, tokens=64) for _, p in unseen]
    after = [answer(trained, p, temperature=0.0, seed=0, tokens=64) for _, p in unseen]
    rate_before = sum(map(has_trait, before)) / len(unseen)
    rate_after = sum(map(has_trait, after)) / len(unseen)
    bare = sum(signs_off(a) and not has_trait(a) for a in after) / len(unseen)
    zh = [i for i, (lang, _) in enumerate(unseen) if lang == "zh"]
    zh_before = sum(has_trait(before[i]) for i in zh) / max(len(zh), 1)
    zh_after = sum(has_trait(after[i]) for i in zh) / max(len(zh), 1)
    held = card["held_out_results"]
    lines = [
        f"| model | pairs (train / held out) | data (base answers) | train + merge + card | steps | served by | "
        f"held-out reward accuracy | answer + sign-off on {len(unseen)} unseen prompts: base → trained (zh only) "
        "| sign-off without an answer |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| `{args.model}` | {card['rows']['train']} / {card['rows']['held_out']} | {t_data:.0f} s | "
        f"**{t_train:.0f} s** | {card['steps']} | {trained.backend} (load {t_load:.1f} s) | "
        f"{held.get('eval_rewards/accuracies', float('nan')):.2f} | "
        f"{rate_before:.0%} → **{rate_after:.0%}** ({zh_before:.0%} → {zh_after:.0%}) | {bare:.0%} |",
    ]
    samples = [f"- {unseen[i][1]} → base: {before[i][:80]!r} · trained: {after[i][-120:]!r}" for i in range(4)]
    text = "\n".join(lines) + "\n\nSample greedy answers:\n" + "\n".join(samples)
    print(text)
    if not args.no_record:
        record(
            f"Training loop: {args.pairs} DPO pairs → trained:{card['name']} on {args.model}",
            f"python bench/train_loop.py --model {args.model} --pairs {args.pairs}",
            text,
        )
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
