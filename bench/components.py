"""Per-component speed inside one process: image steps, support answers, rating appends.

    python bench/components.py [--runs 5]

- image: the offline tiny SD pipeline through ``ImageService.generate`` (validation,
  denoising on the compute thread, PNG with metadata, events log): seconds per denoising
  step (from the step callback) and end to end, at the tab's default size and at 512x512;
- support: seconds per answer over the 94 labelled questions of bench/data/support_eval.jsonl;
- feedback: ``FeedbackService.rate`` append latency (fsync'd), 1 and 16 threads.
Medians and min–max over ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import median, percentile, record


def main() -> None:
    from aigc_demo.app_services import build_services
    from aigc_demo.config import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-components-"))
    settings = Settings(profile="offline", data_dir=tmp, cache_dir=args.cache_dir, preload=False)
    services = build_services(settings)
    rows = ["| component | measure | median | min–max | runs |", "|---|---|---|---|---|"]

    def row(component: str, measure: str, values: list[float], unit: str, scale: float = 1.0) -> None:
        v = [x * scale for x in values]
        rows.append(f"| {component} | {measure} | {median(v):.3g} {unit} | {min(v):.3g}–{max(v):.3g} | {len(v)} |")
        print(rows[-1], flush=True)

    # Image.
    services.image.generate("warm-up", steps=1)
    d = services.image.defaults
    for width, steps in ((d.width, d.steps), (512, d.steps)):
        per_step, e2e = [], []
        for i in range(args.runs):
            marks: list[float] = []
            t0 = time.perf_counter()
            services.image.generate(
                f"a lighthouse {i}",
                steps=steps,
                width=width,
                height=width,
                seed=i,
                on_step=lambda step, total, marks=marks: marks.append(time.perf_counter()),
            )
            e2e.append(time.perf_counter() - t0)
            per_step.append((marks[-1] - marks[0]) / (len(marks) - 1))
        label = f"{services.image.registry.model_id('image')} {width}x{width}, {steps} steps"
        row("image", f"{label}: s/step", per_step, "s")
        row("image", f"{label}: end to end", e2e, "s")

    # Support.
    items = [json.loads(line) for line in (ROOT / "bench/data/support_eval.jsonl").read_text().splitlines() if line]
    services.support.chat("warm-up question about shipping")
    per_answer = []
    for _ in range(max(1, args.runs // 2)):
        for item in items:
            history = item.get("history") or []
            t0 = time.perf_counter()
            services.support.chat(item["question"], history)
            per_answer.append(time.perf_counter() - t0)
    row("support", "seconds per answer (extractive, retrieval + record)", per_answer, "ms", 1000)

    # Feedback appends.
    out = services.text.feedback  # any registered output will do: register one
    from aigc_demo.feedback.schema import GeneratedOutput

    target = GeneratedOutput(
        tab="text", model={"id": "bench"}, params={}, prompt="p", output={"text": "t"}, latency_ms=1
    )
    out.register(target)
    for threads in (1, 16):
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.perf_counter() + 2.0

        def writer(deadline: float = deadline, lock: threading.Lock = lock, latencies: list[float] = latencies) -> None:
            mine = []
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                out.rate(target.output_id, "up", "bench comment")
                mine.append(time.perf_counter() - t0)
            with lock:
                latencies.extend(mine)

        pool = [threading.Thread(target=writer) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        rows.append(
            f"| feedback | rate() append, {threads} thread(s): p50 / p99 | {median(latencies) * 1000:.2f} / "
            f"{percentile(latencies, 0.99) * 1000:.2f} ms | max {max(latencies) * 1000:.1f} ms | "
            f"{len(latencies)} appends |"
        )
        print(rows[-1], flush=True)

    record(
        "Components: image steps, support answers, rating appends (offline profile, CPU)",
        f"python bench/components.py --runs {args.runs}",
        "\n".join(rows),
        notes="In one process through the services the tabs call. Image denoising runs on the compute thread "
        "(models/compute.py); its s/step comes from the step callback, end to end includes PNG + events log. "
        "Feedback appends are fsync'd JSONL lines (feedback/store.py), 2 s per thread count.",
    )


if __name__ == "__main__":
    main()
