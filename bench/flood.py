"""Interactive calls during a generation flood: does generation leave the server its cores?

    python bench/flood.py [--clients 20] [--seconds 30] [--repeats 2] [--no-record]

Starts ``python app.py`` (offline default: the packaged Qwen through llama.cpp) and floods
it with ``--clients`` gradio_client users, each asking ``/generate_text`` (64 tokens) again
as soon as it is answered or refused (the queue caps refuse most of them: that is the
flood). Meanwhile one probe client sends, one after another, ``/rate`` (a fresh
idempotency key each time) and ``/support_chat`` (Chinese and English questions) and
records each call's latency as the client sees it. Once with generation at nice 10 (the
default, ``models/compute.py``) and once at nice 0, interleaved ``--repeats`` times, each on
a fresh server. Goals (issue 25): ``/rate`` p99 ≤ 300 ms, support p95 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile, record
from bench.serve import Server

QUESTIONS = ["运费多少？", "退货要几天到账？", "How long does shipping take?", "可以开发票吗？"]


def run(nice: str, clients: int, seconds: float, cache_dir: Path) -> dict:
    from gradio_client import Client

    server = Server(cache_dir, AIGC_GENERATION_NICE=nice)
    try:
        server.start()
        output_id = server.client.predict("你好", max_new_tokens=8, api_name="/generate_text")["output_id"]
        stop = threading.Event()
        answered = refused = 0
        lock = threading.Lock()

        def flood(i: int) -> None:
            nonlocal answered, refused
            client = Client(server.url, verbose=False, download_files=False)
            while not stop.is_set():
                try:
                    client.predict(f"写一段关于茶的文案 {i}", max_new_tokens=64, seed=i, api_name="/generate_text")
                    with lock:
                        answered += 1
                except Exception:  # noqa: BLE001 - a refusal from the queue caps: try again
                    with lock:
                        refused += 1
                    time.sleep(0.2)

        threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(5)  # the flood is under way
        probe = Client(server.url, verbose=False, download_files=False)
        rate, support = [], []
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            probe.predict(output_id, "up", "", f"flood-{nice}-{n:06d}", api_name="/rate")
            rate.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            probe.predict(QUESTIONS[n % len(QUESTIONS)], api_name="/support_chat")
            support.append((time.perf_counter() - t0) * 1000)
            n += 1
        stop.set()
        for t in threads:
            t.join(timeout=60)
        return {"rate": rate, "support": support, "answered": answered, "refused": refused}
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    got: dict[str, dict[str, list[float] | int]] = {}
    for _ in range(args.repeats):
        for nice in ("10", "0"):
            result = run(nice, args.clients, args.seconds, args.cache_dir)
            merged = got.setdefault(nice, {"rate": [], "support": [], "answered": 0, "refused": 0})
            for key, value in result.items():
                merged[key] = merged[key] + value  # type: ignore[operator]
            print(nice, {k: (len(v) if isinstance(v, list) else v) for k, v in result.items()}, flush=True)
    lines = [
        "| generation at | /rate p50 / p99 (n) | support p50 / p95 (n) | generations answered / refused |",
        "|---|---|---|---|",
    ]
    for nice, r in got.items():
        rate, support = sorted(r["rate"]), sorted(r["support"])  # type: ignore[arg-type]
        lines.append(
            f"| nice {nice} | {percentile(rate, 0.5):.0f} / **{percentile(rate, 0.99):.0f} ms** ({len(rate)}) | "
            f"{percentile(support, 0.5):.0f} / **{percentile(support, 0.95):.0f} ms** ({len(support)}) | "
            f"{r['answered']} / {r['refused']} |"
        )
    table = "\n".join(lines)
    notes = (
        f"{args.clients} flooding clients, {args.seconds:.0f} s of probing per run, {args.repeats} runs per setting, "
        "interleaved; latency as gradio_client sees it (its own overhead included)."
    )
    command = "python bench/flood.py " + " ".join(sys.argv[1:])
    if args.no_record:
        print(table + "\n\n" + notes)
    else:
        record("Interactive calls during a generation flood", command.strip(), table, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
