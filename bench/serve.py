"""The app as a user meets it: start-up time, memory, and many users at once.

    python bench/serve.py [--warm-runs 3] [--cold] [--users 10] [--rounds 3] [--limits 1,2]

Runs ``python app.py`` as a child process (offline profile, a temp data dir) and talks to
it only through gradio_client, as a browser or script would:
- warm start: process start → first text answer, with the model caches built (goal ≤ 10 s);
- cold start (``--cold``): the same with an empty cache dir (nothing converted yet: with
  llama.cpp the text model needs no conversion; transformers would convert the GGUF once);
- peak RSS of the server (VmHWM) after one request to each of the three tabs (goal ≤ 3 GB);
- ``--users`` concurrent users, each with its own client, each doing ``--rounds`` rounds of
  text (64 tokens), image (default settings) and support, in a per-user rotated order:
  errors, p50/p95 latency per tab and wall time — once per ``AIGC_CONCURRENCY_LIMIT`` in
  ``--limits`` so the queue setting is chosen from measurements.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import median, percentile, record

TEXT_PROMPT = "Explain in two sentences why the sky is blue."
QUESTIONS = ["How long does shipping take?", "退货政策是什么？", "Can I change my delivery address?", "我想要人工客服"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, cache_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        self.env = {
            **os.environ,
            "AIGC_PROFILE": "offline",
            "AIGC_DATA_DIR": str(self.data),
            "AIGC_CACHE_DIR": str(cache_dir),
            "AIGC_PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}/"

    def spawn(self) -> float:
        """Start ``python app.py``; return the perf_counter time it was started at."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data / "server.log", "w"),
        )
        return t0

    def start(self) -> float:
        """Start the server; return seconds from process start to the first text answer."""
        from gradio_client import Client

        t0 = self.spawn()
        deadline = t0 + 600
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data / 'server.log').read_text()[-2000:]}")
            try:
                self.client = Client(self.url, verbose=False, download_files=str(self.data / "downloads"))
                break
            except Exception:
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.1)
        self.ready_s = time.perf_counter() - t0
        self.client.predict(TEXT_PROMPT, max_new_tokens=16, temperature=0, api_name="/generate_text")
        return time.perf_counter() - t0

    def rss_mb(self) -> tuple[float, float]:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.data, ignore_errors=True)


def one_of_each(client, i: int = 0) -> dict[str, float]:
    calls = {
        "text": lambda: client.predict(TEXT_PROMPT, max_new_tokens=64, seed=i, api_name="/generate_text"),
        "image": lambda: client.predict(f"a lighthouse at dusk {i}", seed=i, api_name="/generate_image"),
        "support": lambda: client.predict(QUESTIONS[i % len(QUESTIONS)], api_name="/support_chat"),
    }
    order = list(calls)[i % 3 :] + list(calls)[: i % 3]
    out = {}
    for tab in order:
        t0 = time.perf_counter()
        calls[tab]()
        out[tab] = time.perf_counter() - t0
    return out


def concurrent_users(server: Server, users: int, rounds: int) -> dict:
    from gradio_client import Client

    latencies: dict[str, list[float]] = {"text": [], "image": [], "support": []}
    errors: list[str] = []
    lock = threading.Lock()
    clients = [Client(server.url, verbose=False, download_files=str(server.data / f"dl{u}")) for u in range(users)]
    barrier = threading.Barrier(users)

    def user(u: int) -> None:
        barrier.wait()
        for r in range(rounds):
            try:
                got = one_of_each(clients[u], u + r)
            except Exception as exc:  # noqa: BLE001 - counted, not raised
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                continue
            with lock:
                for tab, seconds in got.items():
                    latencies[tab].append(seconds)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall": time.perf_counter() - t0, "latencies": latencies, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a start with an empty model cache")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limits", default="1,2", help="AIGC_CONCURRENCY_LIMIT values to compare")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    args = parser.parse_args()

    rows = ["| measure | median | min–max | runs | goal |", "|---|---|---|---|---|"]
    if args.cold:
        cold_cache = Path(tempfile.mkdtemp(prefix="bench-cold-cache-"))
        server = Server(cold_cache)
        try:
            cold = server.start()
            print(f"cold start {cold:.1f}s", flush=True)
        finally:
            server.stop()
            shutil.rmtree(cold_cache, ignore_errors=True)
        rows.append(f"| cold start → first answer (empty model cache) | {cold:.1f} s | — | 1 | ≤ 10 s |")

    warm, ready, rss, hwm = [], [], [], []
    for i in range(args.warm_runs):
        server = Server(args.cache_dir)
        try:
            warm.append(server.start())
            ready.append(server.ready_s)
            one_of_each(server.client, i)  # load the image and support models too
            now, peak = server.rss_mb()
            rss.append(now)
            hwm.append(peak)
            print(
                f"warm start {warm[-1]:.1f}s (server up {ready[-1]:.1f}s), RSS {now:.0f} MB, peak {peak:.0f} MB",
                flush=True,
            )
        finally:
            server.stop()
    rows += [
        (
            f"| server up (Gradio answers) | {median(ready):.1f} s | {min(ready):.1f}–{max(ready):.1f} | "
            f"{len(ready)} | — |"
        ),
        (
            f"| warm start → first text answer | {median(warm):.1f} s | {min(warm):.1f}–{max(warm):.1f} | "
            f"{len(warm)} | ≤ 6 s |"
        ),
        f"| RSS, all three tabs loaded | {median(rss):.0f} MB | {min(rss):.0f}–{max(rss):.0f} | {len(rss)} | — |",
        f"| peak RSS (VmHWM) | {median(hwm):.0f} MB | {min(hwm):.0f}–{max(hwm):.0f} | {len(hwm)} | ≤ 3 GB |",
    ]

    conc = [
        "| concurrency limit per tab | tab | requests | errors | p50 s | p95 s | max s | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for limit in [x for x in args.limits.split(",") if x]:
        server = Server(args.cache_dir, AIGC_CONCURRENCY_LIMIT=limit)
        try:
            server.start()
            one_of_each(server.client)
            result = concurrent_users(server, args.users, args.rounds)
        finally:
            server.stop()
        for tab, values in result["latencies"].items():
            conc.append(
                f"| {limit} | {tab} | {len(values)} | {len(result['errors'])} | {median(values):.2f} | "
                f"{percentile(values, 0.95):.2f} | {max(values) if values else float('nan'):.2f} | "
                f"{result['wall']:.1f} |"
            )
        print(conc[-3:], result["errors"][:3], flush=True)

    record(
        "Serving: start-up, memory, concurrent users (offline profile, CPU)",
        f"python bench/serve.py --warm-runs {args.warm_runs}{' --cold' if args.cold else ''} --users {args.users} "
        f"--rounds {args.rounds} --limits {args.limits}",
        "\n".join(rows) + "\n\n" + "\n".join(conc),
        notes=f"`python app.py` in a child process, driven only through gradio_client. Concurrent users: {args.users} "
        f"clients started together, each doing {args.rounds} rounds of text (64 tokens), image (default settings) and "
        "support in a rotated order; latency is per request, client side, queueing included.",
    )


if __name__ == "__main__":
    main()
