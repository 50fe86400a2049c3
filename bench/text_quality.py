"""Text answers as a user gets them, scored automatically, per model side by side.

    python bench/text_quality.py [--split test|tune|holdout|holdout2|all] [--models ID,ID] [--seeds 1] [--show 6]

Prompts: ``bench/data/text_quality.jsonl`` — 100 inputs over every preset of the Text tab,
72 % Chinese, written blind (by a helper that saw only the presets and this file's format,
never the code or any model's answers) and committed before any model ran on them. Its
``tune`` split is where presets and sampling are chosen; ``test`` is only reported.
``bench/data/text_quality_holdout.jsonl`` (split ``holdout``, 64 prompts, 73 % Chinese) was
written later the same way, after the presets were settled, by another blind helper: a
check on data nobody had looked at when ``test`` had been seen many times.
``bench/data/text_quality_holdout2.jsonl`` (split ``holdout2``, 80 prompts, 75 % Chinese) was
written the same way once ``holdout``'s failures had been read: the check for the loop guard
and anything else chosen after that reading.

Each prompt goes through the app's own ``TextService`` (the preset's template, system prompt,
temperature and length, the model's chat template, the engine the app would use), with a
fixed seed per run, and the answer is checked:

- **script**: an answer expected in Chinese has ≥ 60 % Han characters among its letters; one
  expected in English ≤ 5 % (a zh→en translation that repeats the Chinese fails here);
- **repetition**: ≤ 25 % of its character 6-grams (whitespace dropped) repeat an earlier one,
  and no line of ≥ 6 characters appears three times;
- **on topic**: at least one of the prompt's keywords (alternatives per concept) appears;
- **length**: within the prompt's plausible range of characters;
- **cut** (reported, not a failure): the answer stopped at the length limit.

``--loop-guard both`` (the default) scores every answer twice from one generation: as the
model wrote it, and as the loop guard (services/loops.py) would have ended it — the guard
replayed over the streamed text — so the two columns differ only by the guard. ``on`` / ``off``
score one of them.

These thresholds were fixed before the first run and are not tuned on answers. A prompt
*passes* when all four checks pass. Models run one after another, prompts interleaved per
seed, so each model meets the same machine state on average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import record

DATA = ROOT / "bench" / "data" / "text_quality.jsonl"
HOLDOUTS = {
    "holdout": ROOT / "bench" / "data" / "text_quality_holdout.jsonl",
    "holdout2": ROOT / "bench" / "data" / "text_quality_holdout2.jsonl",
}
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
MIN_ZH_SHARE, MAX_ZH_IN_EN = 0.60, 0.05
MAX_REPEAT, NGRAM, LINE_REPEATS = 0.25, 6, 3


def load(split: str) -> list[dict[str, Any]]:
    path = HOLDOUTS.get(split, DATA)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def han_share(text: str) -> float:
    han, latin = len(HAN.findall(text)), len(LATIN.findall(text))
    return han / (han + latin) if han + latin else 0.0


def repetition(text: str) -> float:
    """Share of character n-grams that repeat an earlier one (0 = none, → 1 = a loop)."""
    chars = re.sub(r"\s+", "", text)
    grams = [chars[i : i + NGRAM] for i in range(len(chars) - NGRAM + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def repeated_line(text: str) -> bool:
    counts: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        line = line.strip(" -*#>•·0123456789.、）)")
        if len(line) >= 6:
            counts[line] += 1
    return any(n >= LINE_REPEATS for n in counts.values())


def score(row: dict[str, Any], text: str, finish: str) -> dict[str, bool]:
    share = han_share(text)
    script = share >= MIN_ZH_SHARE if row["expect_lang"] == "zh" else share <= MAX_ZH_IN_EN
    lowered = text.lower()
    topic = any(k.lower() in lowered for group in row["keywords"] for k in group)
    length = row["min_chars"] <= len(text.strip()) <= row["max_chars"]
    fluent = repetition(text) <= MAX_REPEAT and not repeated_line(text)
    checks = {"script": script, "repetition": fluent, "topic": topic, "length": length}
    return {**checks, "pass": all(checks.values()), "cut": finish == "length"}


GUARDED = " +guard"


def guarded(text: str, finish: str) -> tuple[str, str]:
    """What the loop guard would have left of an answer streamed a few characters at a time."""
    from aigc_demo.services.loops import LoopGuard

    guard = LoopGuard()
    for end in range(1, len(text) + 1):
        at = guard.check(text[:end])
        if at is not None:
            return text[:at].rstrip(), "repetition"
    return text, finish


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="test", choices=["test", "tune", "holdout", "holdout2", "all"])
    parser.add_argument("--models", default="", help="comma-separated text model ids (default: the offline choices)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per prompt, seeds 1..N")
    parser.add_argument("--show", type=int, default=6, help="sample answers per model in the notes")
    parser.add_argument("--loop-guard", default="both", choices=["both", "on", "off"], help="score with / without it")
    parser.add_argument("--no-record", action="store_true", help="print, do not append to RESULTS.md")
    return parser.parse_args()


def run_prompts(
    service: Any, generators: list[str], kinds: list[str], rows: list[dict[str, Any]], seeds: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[float]]]:
    """Every prompt through every generator for each seed: scored answers and tokens/s per model column."""
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tokens: dict[str, list[float]] = defaultdict(list)
    for seed in range(1, seeds + 1):
        for row in rows:
            for generator in generators:
                result = service.generate(row["input"], preset=row["preset"], model=generator, seed=seed)
                for kind in kinds:
                    model = generator + kind
                    text, finish = result["text"], result["finish_reason"]
                    if kind == GUARDED:
                        text, finish = guarded(text, finish)
                    checks = score(row, text, finish)
                    results[model].append({**row, **checks, "seed": seed, "output": text})
                    if result["timings"]["tokens_per_s"]:
                        tokens[model].append(result["timings"]["tokens_per_s"])
                    verdict = "PASS" if checks["pass"] else "fail"
                    print(f"{row['id']} {model.split(':')[-1][:20]:20s} {verdict} {text[:70]!r}", flush=True)
    return results, tokens


def rate(items: list[dict[str, Any]], key: str = "pass") -> str:
    return f"{sum(i[key] for i in items) / len(items):.2f}" if items else "–"


def tables(
    models: list[str],
    rows: list[dict[str, Any]],
    results: dict[str, list[dict[str, Any]]],
    tokens: dict[str, list[float]],
    seeds: int,
) -> list[str]:
    """The per-model table and the per-preset table, as Markdown lines."""
    lines = [
        "| model | zh pass (n) | en pass (n) | script | not repetitive | on topic | length | cut at limit | tok/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        got = results[model]
        zh = [g for g in got if g["lang"] == "zh"]
        en = [g for g in got if g["lang"] == "en"]
        speed = sorted(tokens[model])[len(tokens[model]) // 2] if tokens[model] else 0.0
        lines.append(
            f"| `{model}` | **{rate(zh)}** ({len(zh)}) | {rate(en)} ({len(en)}) | {rate(got, 'script')} | "
            f"{rate(got, 'repetition')} | {rate(got, 'topic')} | {rate(got, 'length')} | {rate(got, 'cut')} | "
            f"{speed:.1f} |"
        )
    presets = sorted({r["preset"] for r in rows})
    lines += ["", "| preset (zh + en) | n | " + " | ".join(f"`{m.split(':')[-1]}`" for m in models) + " |"]
    lines.append("|---|---|" + "---|" * len(models))
    for preset in presets:
        cells = [rate([g for g in results[m] if g["preset"] == preset]) for m in models]
        n = sum(r["preset"] == preset for r in rows) * seeds
        lines.append(f"| {preset} | {n} | " + " | ".join(cells) + " |")
    return lines


def sample_notes(
    args: argparse.Namespace, models: list[str], rows: list[dict[str, Any]], results: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """The run's summary line and a few Chinese answers per model, with what they failed."""
    notes = [f"Split `{args.split}`, {len(rows)} prompts × {args.seeds} seed(s); pass = all four checks."]
    for model in models:
        zh = [g for g in results[model] if g["lang"] == "zh"]
        notes.append(f"\nSample Chinese answers, `{model}` (first {args.show} zh prompts, seed 1):\n")
        for g in [g for g in zh if g["seed"] == 1][: args.show]:
            flat = g["output"].strip().replace("\n", " ⏎ ")
            failed = [k for k in ("script", "repetition", "topic", "length") if not g[k]]
            verdict = "pass" if g["pass"] else "fail: " + ", ".join(failed)
            notes.append(f"- {g['id']} {g['preset']} «{g['input'][:40]}» → «{flat[:160]}» ({verdict})")
    return notes


def main() -> int:
    args = parse_args()

    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.text import TextService

    data = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    settings = Settings(
        profile="offline",
        data_dir=data,
        cache_dir=ROOT / "data" / "cache",
        preload=False,
        scrub_pii=False,
        loop_guard=False,  # replayed below, so one generation gives both columns
    )
    registry = ModelRegistry(settings)
    generators = [m.strip() for m in args.models.split(",") if m.strip()] or registry.text_choices()
    kinds = {"both": ["", GUARDED], "on": [GUARDED], "off": [""]}[args.loop_guard]
    models = [m + kind for m in generators for kind in kinds]
    service = TextService(registry, FeedbackService.from_settings(settings), settings)
    rows = load(args.split)
    for model in generators:
        registry.get("text", model)  # load outside the timings
    results, tokens = run_prompts(service, generators, kinds, rows, args.seeds)

    table = "\n".join(tables(models, rows, results, tokens, args.seeds))
    note = "\n".join(sample_notes(args, models, rows, results))
    command = "python bench/text_quality.py " + " ".join(sys.argv[1:])
    if args.no_record:
        print(table + "\n\n" + note)
    else:
        record("Text quality, automatic checks", command.strip(), table, note)
    out = data / "answers.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for model, items in results.items():
            for item in items:
                fh.write(json.dumps({"model": model, **item}, ensure_ascii=False) + "\n")
    print(f"answers: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
