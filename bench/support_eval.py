"""Support evaluation: retrieval quality, handoff behaviour and answer support on a labelled set.

    python bench/support_eval.py                       # the sample KB and bench/data/support_eval.jsonl
    python bench/support_eval.py --kb DIR              # any KB: its own questions + the built-in out-of-scope ones
    python bench/support_eval.py --kb DIR --questions FILE [--answer-mode llm] [--no-record]

A questions file is JSONL: {"question", "expected": [ids] (empty = out of scope), "kind", "history"?}.
Reports hit@1, hit@3, MRR (top 10), in-scope handoff rate, out-of-scope handoff precision / recall,
the share of answers whose claims are supported by their sources, and seconds per answer.
Goals (offline models, sample KB): hit@3 ≥ 0.9, out-of-scope handoff recall ≥ 0.9, in-scope handoff ≤ 0.1.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import median, percentile, record  # noqa: E402

DEFAULT_QUESTIONS = ROOT / "bench" / "data" / "support_eval.jsonl"


def load_items(kb_dir: Path, questions: Path | None) -> list[dict]:
    from aigc_demo.config import ASSETS_DIR
    from aigc_demo.services.support.kb import load_kb

    if questions is None and kb_dir.resolve() == (ASSETS_DIR / "kb").resolve():
        questions = DEFAULT_QUESTIONS
    if questions is not None:
        return [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    # Any other KB: each entry's own question must find it, and off-topic questions must hand off.
    kb = load_kb(kb_dir)
    items = [{"question": e.question, "expected": [e.id], "kind": "own-question"} for e in kb.entries]
    oos = [json.loads(line) for line in DEFAULT_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items + [i for i in oos if i["kind"] == "out-of-scope"]


def main() -> None:
    from aigc_demo.config import ASSETS_DIR, Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.support.bot import SupportService, is_supported

    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, default=ASSETS_DIR / "kb")
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--answer-mode", choices=["extractive", "llm", "auto"], default="auto")
    parser.add_argument("--min-confidence", type=float)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    parser.add_argument("--limit", type=int, help="evaluate only every k-th item so that about N remain")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    items = load_items(args.kb, args.questions)
    if args.limit and len(items) > args.limit:
        step = len(items) / args.limit
        items = [items[int(i * step)] for i in range(args.limit)]  # spread over every kind
    with tempfile.TemporaryDirectory() as tmp:
        overrides = dict(data_dir=Path(tmp), cache_dir=args.cache_dir, support_kb=args.kb, support_answer_mode=args.answer_mode)
        if args.min_confidence is not None:
            overrides["support_min_confidence"] = args.min_confidence
        settings = Settings(**overrides)
        support = SupportService(ModelRegistry(settings), FeedbackService(settings.data_dir), settings)
        start = time.perf_counter()
        support.index()
        index_s = time.perf_counter() - start

        per_kind: dict[str, list[dict]] = collections.defaultdict(list)
        latencies, failures = [], []
        for item in items:
            history = item.get("history") or []
            hits, _confidence, _ = support.retrieve(item["question"], history, top_k=10)
            ids = [h.entry.id for h in hits]
            t0 = time.perf_counter()
            result = support.chat(item["question"], history)
            latencies.append(time.perf_counter() - t0)
            expected = set(item["expected"])
            rank = next((i for i, x in enumerate(ids, start=1) if x in expected), None)
            supported = None
            if not result["handoff"]:
                texts = [e.answer for e in support.kb.entries if e.id in {s["id"] for s in result["sources"]}]
                supported = is_supported(result["answer"], texts)
            row = {"in_scope": bool(expected), "rank": rank, "handoff": result["handoff"], "supported": supported,
                   "mode": result.get("answer_mode")}
            per_kind[item["kind"]].append(row)
            if expected and (rank is None or rank > 3 or result["handoff"]):
                failures.append(f"{item['kind']}: {item['question']!r} → {ids[:3]} handoff={result['handoff']}")
            if not expected and not result["handoff"]:
                failures.append(f"{item['kind']}: {item['question']!r} answered from {ids[:1]} (should hand off)")

    def metrics(rows: list[dict]) -> dict[str, float]:
        inscope = [r for r in rows if r["in_scope"]]
        oos = [r for r in rows if not r["in_scope"]]
        out: dict[str, float] = {}
        if inscope:
            out["n"] = len(inscope)
            out["hit@1"] = sum(r["rank"] == 1 for r in inscope) / len(inscope)
            out["hit@3"] = sum(r["rank"] is not None and r["rank"] <= 3 for r in inscope) / len(inscope)
            out["mrr"] = sum(1 / r["rank"] for r in inscope if r["rank"]) / len(inscope)
            out["handoff"] = sum(r["handoff"] for r in inscope) / len(inscope)
        if oos:
            out["n_oos"] = len(oos)
            out["oos_recall"] = sum(r["handoff"] for r in oos) / len(oos)
        answered = [r for r in rows if r["supported"] is not None]
        if answered:
            out["supported"] = sum(r["supported"] for r in answered) / len(answered)
        return out

    all_rows = [r for rows in per_kind.values() for r in rows]
    total = metrics(all_rows)
    handoffs = [r for r in all_rows if r["handoff"]]
    precision = sum(not r["in_scope"] for r in handoffs) / len(handoffs) if handoffs else float("nan")

    lines = ["| question kind | n | hit@1 | hit@3 | MRR | handoff rate |", "|---|---|---|---|---|---|"]
    for kind, rows in sorted(per_kind.items()):
        m = metrics(rows)
        if "n" in m:
            lines.append(f"| {kind} | {m['n']:.0f} | {m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['mrr']:.2f} | {m['handoff']:.2f} |")
        else:
            lines.append(f"| {kind} | {m['n_oos']:.0f} | – | – | – | {m['oos_recall']:.2f} |")
    lines.append(
        f"| **all in-scope** | {total.get('n', 0):.0f} | **{total.get('hit@1', 0):.2f}** | **{total.get('hit@3', 0):.2f}** | "
        f"**{total.get('mrr', 0):.2f}** | **{total.get('handoff', 0):.2f}** |"
    )
    summary = (
        f"\nOut-of-scope handoff recall **{total.get('oos_recall', float('nan')):.2f}**, handoff precision "
        f"**{precision:.2f}**; answers supported by their sources **{total.get('supported', float('nan')):.2f}**; "
        f"seconds per answer median {median(latencies):.3f}, p95 {percentile(latencies, 0.95):.3f}; "
        f"index build {index_s:.1f}s. Answer mode: {settings.resolved_support_answer_mode}, "
        f"min confidence {settings.support_min_confidence}."
    )
    modes = collections.Counter(r["mode"] for r in all_rows if r["mode"])
    if modes:
        summary += " Answers by mode: " + ", ".join(f"{k} {v}" for k, v in sorted(modes.items())) + "."
    table = "\n".join(lines) + "\n" + summary
    if failures:
        table += "\n\nMisses:\n" + "\n".join(f"- {f}" for f in failures[:40])
    if args.no_record:
        print(table)
    else:
        kb_name = args.kb.resolve().relative_to(ROOT) if args.kb.resolve().is_relative_to(ROOT) else args.kb
        record(f"Support evaluation ({kb_name})", "python bench/" + Path(__file__).name + " " + " ".join(sys.argv[1:]), table)


if __name__ == "__main__":
    main()
