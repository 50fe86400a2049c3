"""BM25 implementations compared on the support index's own terms: ranking and speed.

    python bench/support_bm25.py [--split tune]

The app scores each query *unit* by its best alternative (the word, its pinyin, its
translations); bm25s scores a flat bag of terms. Both get the same analysed terms, so the
table shows what the unit scoring is worth and what either costs per query.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.common import cpu, record
from bench.support_eval import DEFAULT_QUESTIONS, kb_for, read_jsonl


def main() -> None:
    import bm25s  # type: ignore[import-untyped]

    from aigc_demo.services.support.analysis import Analyzer
    from aigc_demo.services.support.kb import load_kb
    from aigc_demo.services.support.lexicon import default_lexicon
    from aigc_demo.services.support.retrieval import BM25

    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="tune")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    items = [
        i for i in read_jsonl(DEFAULT_QUESTIONS) if i["expected"] and i["split"] == args.split and not i.get("history")
    ]
    rows = []
    totals = {"units": [0, 0.0], "bm25s": [0, 0.0]}
    for domain in sorted({i["domain"] for i in items}):
        kb = load_kb(kb_for(domain))
        analyzer = Analyzer(default_lexicon())
        analyzer.learn_vocabulary([e.text for e in kb.entries])
        docs = [analyzer.index_terms(e.text) for e in kb.entries]
        analyzer.fit(docs)
        ours = BM25(docs)
        vocab = _vocab(docs)
        theirs = bm25s.BM25(k1=1.2, b=0.75)
        theirs.index(bm25s.tokenization.Tokenized(ids=[_ids(d, vocab) for d in docs], vocab=vocab), show_progress=False)
        ids = [e.id for e in kb.entries]
        questions = [i for i in items if i["domain"] == domain]
        hits = {"units": 0, "bm25s": 0}
        for item in questions:
            units = analyzer.units(item["question"])
            start = time.perf_counter()
            score = np.zeros(len(docs), dtype=np.float32)
            for unit in units:
                s, _ = ours.unit_scores(unit)
                score += unit.weight * s
            totals["units"][1] += time.perf_counter() - start
            flat = [t for u in units for t in u.alternatives if t in vocab]
            start = time.perf_counter()
            other = theirs.get_scores([vocab[t] for t in flat]) if flat else np.zeros(len(docs))
            totals["bm25s"][1] += time.perf_counter() - start
            for name, s in (("units", score), ("bm25s", other)):
                top = [ids[j] for j in np.argsort(-s, kind="stable")[:3]]
                hits[name] += any(t in item["expected"] for t in top)
                totals[name][0] += 1
        rows.append(
            f"| {domain} | {len(questions)} | {hits['units'] / len(questions):.2f} | "
            f"{hits['bm25s'] / len(questions):.2f} |"
        )
    table = "\n".join(
        [
            "| domain | n | hit@3, unit scoring (app) | hit@3, bm25s flat terms |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Keyword scoring per query: app {1000 * totals['units'][1] / totals['units'][0]:.3f} ms, "
            f"bm25s {1000 * totals['bm25s'][1] / totals['bm25s'][0]:.3f} ms ({cpu()}); "
            "keyword ranker alone, no embedder.",
        ]
    )
    if args.no_record:
        print(table)
    else:
        record(
            "Support keyword ranker: unit scoring vs bm25s",
            "python bench/support_bm25.py " + " ".join(sys.argv[1:]),
            table,
        )


def _vocab(docs: list[list[str]]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for d in docs:
        for t in d:
            vocab.setdefault(t, len(vocab))
    return vocab


def _ids(doc: list[str], vocab: dict[str, int]) -> list[int]:
    return [vocab[t] for t in doc]


if __name__ == "__main__":
    main()
