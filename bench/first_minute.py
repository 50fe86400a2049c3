"""The first minute after a start: is the first answer a host shows as fast as the rest?

    python bench/first_minute.py [--starts 2] [--tokens 96]

Starts ``python app.py`` (offline profile, the prepared model caches, an empty data dir, as
``make run`` does after ``make setup``), with the start-up preload on and, for comparison, off
(``AIGC_PRELOAD=0``), alternating. From the moment the page answers, it asks the Text tab for
greedy answers back to back through gradio_client (the same Chinese prompt each time) until
the support index reports ready in ``/healthz`` and at least five answers are in, then five
more: the **first-minute speed** is the median tok/s of the answers that started before the
index was ready, the **steady speed** that of the last five. Also timed: process start →
page served (**warm start**), → first text answer, → support index ready.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import median, record
from bench.serve import Server

PROMPT = "用三句话介绍一下杭州西湖的风景。"


def one_start(preload: bool, tokens: int) -> dict:
    server = Server(ROOT / "data" / "cache", AIGC_PRELOAD="1" if preload else "0")
    import httpx
    from gradio_client import Client

    t0 = server.spawn()
    try:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError((server.data / "server.log").read_text()[-2000:])
            try:
                if httpx.get(server.url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        page = time.perf_counter() - t0
        client = Client(server.url, verbose=False)
        answers: list[tuple[float, float, bool]] = []  # (started at, tok/s, index ready when it started)
        ready_at = None
        first_answer = None
        while True:
            health = httpx.get(server.url + "healthz", timeout=5).json()
            ready = bool(health.get("support_index_ready"))
            if ready and ready_at is None:
                ready_at = time.perf_counter() - t0
            started = time.perf_counter() - t0
            got = client.predict(PROMPT, max_new_tokens=tokens, temperature=0, api_name="/generate_text")
            first_answer = first_answer or time.perf_counter() - t0
            answers.append((started, got["timings"]["tokens_per_s"], ready))
            after = [a for a in answers if a[2]]
            if (not preload or ready_at is not None) and len(answers) >= 5 and len(after) >= 5:
                break
            if started > 120:
                raise TimeoutError("the support index was not ready within two minutes")
            if not preload and len(answers) >= 10:
                break
        early = [a[1] for a in answers if not a[2]] if preload else [a[1] for a in answers[:5]]
        steady = [a[1] for a in answers[-5:]]
        return {
            "page": page,
            "first_answer": first_answer,
            "ready": ready_at,
            "early": median(early) if early else float("nan"),
            "n_early": len(early),
            "steady": median(steady),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=2, help="starts per setting, alternating")
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for i in range(args.starts):
        for preload in (True, False) if i % 2 == 0 else (False, True):
            got = one_start(preload, args.tokens)
            runs[preload].append(got)
            print(preload, {k: round(v, 2) if isinstance(v, float) else v for k, v in got.items()}, flush=True)
    rows = [
        "| AIGC_PRELOAD | starts | page served | first text answer | support index ready | "
        "first-minute tok/s (answers) | steady tok/s | first-minute ÷ steady |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for preload in (True, False):
        got = runs[preload]
        ready = [g["ready"] for g in got if g["ready"] is not None]
        early, steady = median([g["early"] for g in got]), median([g["steady"] for g in got])
        rows.append(
            f"| {'on' if preload else 'off'} | {len(got)} | {median([g['page'] for g in got]):.1f} s | "
            f"{median([g['first_answer'] for g in got]):.1f} s | "
            f"{f'{median(ready):.1f} s' if ready else '— (built on the first question)'} | "
            f"{early:.1f} ({sum(g['n_early'] for g in got)}) | {steady:.1f} | {early / steady:.2f} |"
        )
    record(
        "First minute after a warm start",
        f"python bench/first_minute.py --starts {args.starts} --tokens {args.tokens}",
        "\n".join(rows),
        notes=f"Greedy answers of {args.tokens} new tokens to «{PROMPT}», back to back from the moment the page "
        "answers; medians over starts. With the preload off, 'first minute' is the first five answers.",
    )


if __name__ == "__main__":
    main()
