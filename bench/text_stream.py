"""Streaming overhead: raw ``model.generate`` vs the app's streaming paths, same model and settings.

    python bench/text_stream.py [--tokens 256] [--runs 3]

Paths, all greedy with exactly ``--tokens`` new tokens (min_new_tokens = max_new_tokens):
1. raw ``model.generate`` (no streamer),
2. the backend's ``stream`` (worker thread + TextIteratorStreamer),
3. the Text tab's loop: ``TextService.stream`` with the UI's update coalescing,
4. end to end through Gradio: ``/generate_text`` via gradio_client on a local server
   (its own output length, so tokens/s is completion tokens over client wall time).
Reports medians and min–max of tokens/s and the ratio to raw (goal: ≥ 0.95).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from bench.common import record

PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."


def raw_generate(backend: Any, request: Any, n: int) -> float:
    """Tokens/s of raw ``model.generate``, greedy, exactly ``n`` new tokens."""
    import torch

    # On the same long-lived thread the app generates on (see models/text_transformers.py).
    from aigc_demo.models import compute

    def _raw() -> float:
        inputs = backend.encode(request)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = backend.model.generate(
                **inputs,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=backend.tokenizer.eos_token_id,
            )
        dt = time.perf_counter() - t0
        return (out.shape[1] - inputs["input_ids"].shape[1]) / dt

    return compute.run(_raw)


def backend_stream(backend: Any, request: Any) -> float:
    """Tokens/s of the backend's ``stream`` (worker thread + TextIteratorStreamer)."""
    from aigc_demo.models.base import GenerationStats

    stats = GenerationStats()
    t0 = time.perf_counter()
    for _ in backend.stream(request, stats):
        pass
    return stats.completion_tokens / (time.perf_counter() - t0)


def ui_loop(services: Any, backend: Any, n: int, results: dict[str, list[float]]) -> float:
    """Tokens/s of the Text tab's loop; the number of UI updates goes to ``results["_ui_updates"]``."""
    from aigc_demo.ui.tabs import text as text_tab

    # What the Text tab's handler does per update, without the network: coalesce by time,
    # format the stats line, build the output tuple.
    original = backend.stream

    def forced(req, stats=None):  # the tab's request, forced to exactly n tokens
        req.min_new_tokens = n
        return original(req, stats)

    backend.stream = forced
    try:
        t0 = time.perf_counter()
        last, sent, final = 0.0, 0, None
        for update in services.text.stream(PROMPT, max_new_tokens=n, temperature=0, seed=1):
            now = time.monotonic()
            if update.done or now - last >= text_tab.STREAM_INTERVAL_S:
                last = now
                sent += 1
                _ = (update.text, text_tab._stats_line(update.stats, "m", update.done))
            final = update
        dt = time.perf_counter() - t0
    finally:
        backend.stream = original
    results.setdefault("_ui_updates", []).append(sent)
    return final.result["usage"]["completion_tokens"] / dt


def gradio_e2e(args: argparse.Namespace, tmp: Path, n: int) -> list[float]:
    """Tokens/s of ``/generate_text`` via gradio_client on a local server, ``args.runs`` times."""
    from gradio_client import Client

    from aigc_demo.config import Settings
    from aigc_demo.ui.demo import create_demo, launch_options

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        profile="offline",
        data_dir=tmp / "app",
        cache_dir=args.cache_dir,
        port=port,
        preload=False,
        text_backend="transformers",
    )
    demo = create_demo(settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(settings))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(PROMPT, max_new_tokens=16, temperature=0, api_name="/generate_text")  # loads the model
        e2e = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = client.predict(PROMPT, max_new_tokens=n, temperature=0, api_name="/generate_text")
            e2e.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t0))
        print("gradio", [f"{v:.1f}" for v in e2e])
    finally:
        demo.close()
    return e2e


def table_rows(results: dict[str, list[float]]) -> list[str]:
    base = statistics.median(results["raw generate"])
    rows = ["| path | tokens/s median | min–max | ratio to raw |", "|---|---|---|---|"]
    for name, values in results.items():
        if name.startswith("_"):
            continue
        med = statistics.median(values)
        rows.append(f"| {name} | {med:.1f} | {min(values):.1f}–{max(values):.1f} | {med / base:.2f} |")
    return rows


def main() -> None:
    from aigc_demo.app_services import build_services
    from aigc_demo.config import Settings
    from aigc_demo.models.base import TextRequest
    from aigc_demo.ui.tabs import text as text_tab

    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    args = parser.parse_args()
    n = args.tokens
    tmp = Path(tempfile.mkdtemp())
    # The transformers engine's streaming path (bench/text_engines.py covers llama.cpp).
    settings = Settings(
        profile="offline", data_dir=tmp, cache_dir=args.cache_dir, preload=False, text_backend="transformers"
    )
    services = build_services(settings)
    backend = services.registry.get("text")
    request = TextRequest(
        messages=[{"role": "user", "content": PROMPT}], max_new_tokens=n, min_new_tokens=n, temperature=0
    )
    results: dict[str, list[float]] = {}

    paths: tuple[tuple[str, Callable[[], float]], ...] = (
        ("raw generate", lambda: raw_generate(backend, request, n)),
        ("backend stream", lambda: backend_stream(backend, request)),
        ("Text tab loop", lambda: ui_loop(services, backend, n, results)),
    )
    for _name, fn in paths:
        fn()  # warm-up
    # Interleaved rounds: this VM's speed drifts by ±10 % over a minute, so each round
    # runs every path once and the medians compare like with like.
    for _ in range(args.runs):
        for name, fn in paths:
            results.setdefault(name, []).append(fn())
    for name, _fn in paths:
        print(name, [f"{v:.1f}" for v in results[name]], flush=True)

    # End to end through Gradio.
    results["/generate_text via Gradio"] = gradio_e2e(args, tmp, n)

    rows = table_rows(results)
    updates = statistics.median(results["_ui_updates"])
    record(
        f"Text streaming overhead (SmolLM2-135M, {backend.precision} on {backend.device})",
        f"python bench/text_stream.py --tokens {n} --runs {args.runs}",
        "\n".join(rows),
        notes=f"Greedy, exactly {n} new tokens for the first three paths (the Gradio path's length is the model's own, "
        f"so its ratio is only indicative). The Text tab coalesces tokens into an update every "
        f"{text_tab.STREAM_INTERVAL_S * 1000:.0f} ms ({updates:.0f} updates for {n} tokens). Raw generate runs on the "
        "app's compute thread (models/compute.py).",
    )


if __name__ == "__main__":
    main()
