"""Prompt-lookup speculative decoding in the llama.cpp engine: faster where answers copy?

    python bench/text_speculative.py [--draft 8] [--rounds 2] [--tokens 160]

One process, two engines on the same packaged GGUF (the offline default, Qwen2.5-Coder-0.5B):
``draft_tokens=0`` and ``draft_tokens=--draft``. Each prompt runs greedy on both, alternating
which goes first, for the tasks where an answer copies from its prompt: the Summary and
Translate presets (tune-split inputs of bench/data/text_quality.jsonl, through the app's
own templates), ▶ continue (an answer cut at 60 tokens, continued), and the support bot's
``llm`` answer mode (numbered KB entries + a question). Reported per task: tok/s of each
(median over prompts and rounds), the ratio, the share of draft tokens kept, and whether
every answer is token-for-token identical. The issue's bar: keep it only at ≥ 1.3× with
identical greedy output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import median, record

SUPPORT_QUESTIONS = ["退货运费谁来承担？", "发票怎么开？", "How long does a refund take?"]


def tasks() -> dict[str, list[list[dict[str, str]]]]:
    from aigc_demo.services.text import PRESETS

    rows = [json.loads(line) for line in (ROOT / "bench/data/text_quality.jsonl").read_text("utf-8").splitlines()]
    out: dict[str, list[list[dict[str, str]]]] = {}
    for key in ("summary", "translate"):
        chosen = [r for r in rows if r["split"] == "tune" and r["preset"] == key][:4]
        out[key] = []
        for r in chosen:
            user, system = PRESETS[key].render(r["input"])
            out[key].append([{"role": "system", "content": system}, {"role": "user", "content": user}])
    kb = [json.loads(line) for line in (ROOT / "assets/kb/store_faq.jsonl").read_text("utf-8").splitlines() if line]
    out["support (llm mode)"] = []
    for i, question in enumerate(SUPPORT_QUESTIONS):
        entries = kb[i * 4 : i * 4 + 3]
        context = "\n".join(f"[{n}] {e['question']}\n{e['answer']}" for n, e in enumerate(entries, start=1))
        system = (
            "You are a customer-service assistant. Answer ONLY from the numbered sources below, in the "
            "customer's language, in at most 3 sentences, and cite sources like [1].\n\nSources:\n" + context
        )
        out["support (llm mode)"].append([{"role": "system", "content": system}, {"role": "user", "content": question}])
    return out


def run(engine, messages: list[dict[str, str]], tokens: int) -> tuple[str, float, int]:
    from aigc_demo.models.base import GenerationStats, TextRequest

    stats = GenerationStats()
    t0 = time.perf_counter()
    text = "".join(engine.stream(TextRequest(messages=messages, max_new_tokens=tokens, temperature=0), stats))
    wall = time.perf_counter() - t0
    return text, stats.completion_tokens / wall, stats.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draft", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=160)
    args = parser.parse_args()

    from aigc_demo.models import packaged
    from aigc_demo.models.text_llamacpp import LlamaCppTextBackend

    gguf = packaged.qwen_gguf(ROOT / "data" / "cache")
    plain = LlamaCppTextBackend("qwen", path=gguf)
    spec = LlamaCppTextBackend("qwen", path=gguf, draft_tokens=args.draft)
    plain.load()
    spec.load()
    work = tasks()
    # ▶ continue: the first 60 tokens of a free answer, then the rest from that point.
    work["continue"] = []
    for prompt in ["介绍一下杭州西湖的风景。", "怎样做一道番茄炒蛋？", "Explain how a refrigerator works."]:
        messages = [{"role": "user", "content": prompt}]
        start, _, _ = run(plain, messages, 60)
        work["continue"].append([*messages, {"role": "assistant", "content": start}])
    results: dict[str, dict[str, list[float]]] = {}
    same: dict[str, bool] = {}
    kept: dict[str, list[float]] = {}
    for task, prompts in work.items():
        results[task] = {"plain": [], "spec": []}
        same[task] = True
        kept[task] = []
        for r in range(args.rounds):
            for i, messages in enumerate(prompts):
                order = [("plain", plain), ("spec", spec)]
                if (r + i) % 2:
                    order.reverse()
                texts = {}
                for name, engine in order:
                    before = engine.draft_stats
                    text, speed, _ = run(engine, messages, args.tokens)
                    texts[name] = text
                    results[task][name].append(speed)
                    if name == "spec":
                        drafted, ok = (a - b for a, b in zip(engine.draft_stats, before, strict=True))
                        if drafted:
                            kept[task].append(ok / drafted)
                same[task] &= texts["plain"] == texts["spec"]
                print(task, r, i, {k: round(v[-1], 1) for k, v in results[task].items()}, flush=True)
    rows = [
        f"| task | prompts × rounds | plain tok/s | lookup (draft {args.draft}) tok/s | × | draft tokens kept | "
        "identical greedy output |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in work:
        p, s = median(results[task]["plain"]), median(results[task]["spec"])
        k = median(kept[task]) if kept[task] else 0.0
        rows.append(
            f"| {task} | {len(work[task])} × {args.rounds} | {p:.1f} | {s:.1f} | {s / p:.2f} | {k:.0%} | "
            f"{'yes' if same[task] else '**no**'} |"
        )
    plain.close()
    spec.close()
    record(
        "Prompt-lookup speculative decoding (llama.cpp engine, Qwen2.5-Coder-0.5B)",
        f"python bench/text_speculative.py --draft {args.draft} --rounds {args.rounds} --tokens {args.tokens}",
        "\n".join(rows),
        notes=f"Greedy, up to {args.tokens} new tokens, one answer at a time, engines alternating per prompt.",
    )


if __name__ == "__main__":
    main()
