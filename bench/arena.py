"""Arena leaderboard cost: votes → Bradley–Terry ratings with 200 bootstrap rounds.

    python bench/arena.py [--no-record]

Synthetic votes among 2, 4 and 8 contestants whose true strengths differ; the goal is
200 votes → leaderboard in ≤ 1 s. Also reports whether the fitted order matches the true one.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu, record


def synthetic(n_votes: int, n_contestants: int, seed: int = 0) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    names = [f"c{i}" for i in range(n_contestants)]
    strength = {name: 2.0 ** (n_contestants - i) for i, name in enumerate(names)}  # c0 strongest
    votes = []
    for _ in range(n_votes):
        a, b = rng.sample(names, 2)
        p = strength[a] / (strength[a] + strength[b])
        u = rng.random()
        choice = "a" if u < p * 0.9 else "b" if u < 0.9 else rng.choice(["tie", "both_bad"])
        votes.append({"choice": choice, "a": {"contestant": a}, "b": {"contestant": b}})
    return votes, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from aigc_demo.feedback.arena import leaderboard

    rows = [
        "| votes | contestants | leaderboard (s), 200 bootstrap rounds | fitted order = true order |",
        "|---|---|---|---|",
    ]
    for n_votes in (50, 200, 1000):
        for n_contestants in (2, 4, 8):
            votes, names = synthetic(n_votes, n_contestants)
            start = time.perf_counter()
            table = leaderboard(votes)
            seconds = time.perf_counter() - start
            rows.append(f"| {n_votes} | {n_contestants} | {seconds:.3f} | {[s.model for s in table] == names} |")
    table_md = "\n".join(rows)
    print(f"Arena leaderboard, {cpu()}\n{table_md}")
    if not args.no_record:
        record("Arena leaderboard", "python bench/arena.py", table_md)


if __name__ == "__main__":
    main()
