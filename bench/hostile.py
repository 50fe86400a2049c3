"""What hostile input costs: PII scrubbing on long adversarial runs (linear, not quadratic).

    python bench/hostile.py [--url http://127.0.0.1:7860] [--no-record]

Every pattern in ``feedback/pii.py`` has bounded repeats, so the time per character stays
flat from 10 kB to 1 MB. The run that stalled the server (40,000 "x" in a support history)
took 1.8 s per scrub with the unbounded e-mail pattern.

With ``--url`` (a running app) it also sends the hostile requests of the adversarial run —
the longest history the server accepts (20 messages at the item cap), one over the cap, a
3 MB body — while another thread polls ``/healthz``, and reports each request's time and the
health latency p50 / p99 / max during them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu, record

CASES = {
    "letters (no @)": "x",
    "digits": "1",
    "dot runs": "a.",
    "digit-dash": "1-",
    "token prefixes": "sk-",
    "mixed": "ab1-@.x+ hf_",
    "Chinese": "测试",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--url", help="a running app: also time hostile requests and /healthz during them")
    args = parser.parse_args()
    from aigc_demo.feedback.pii import scrub_text

    sizes = (10_000, 100_000, 1_000_000)
    rows = [
        "| input | " + " | ".join(f"{n // 1000} kB (ms)" for n in sizes) + " | µs per kB at 1 MB |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for name, unit in CASES.items():
        cells = []
        for n in sizes:
            text = (unit * (n // len(unit) + 1))[:n]
            start = time.perf_counter()
            scrub_text(text)
            cells.append((time.perf_counter() - start) * 1000)
        rows.append(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + f" | {cells[-1] * 1000 / 1000:.0f} |")
    table = "\n".join(rows)
    print(f"PII scrub, {cpu()}\n{table}")
    if args.url:
        table += "\n\n" + server_table(args.url.rstrip("/"))
    if not args.no_record:
        record(
            "Hostile input: PII scrub and server", "python bench/hostile.py" + (" --url URL" if args.url else ""), table
        )


def server_table(base: str) -> str:
    import json
    import threading

    import httpx

    from bench.common import percentile

    def call(api: str, data: list) -> tuple[float, str]:
        start = time.perf_counter()
        body = json.dumps({"data": data})
        with httpx.Client(timeout=120) as http:
            r = http.post(f"{base}/gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
            if r.status_code == 200:
                text = http.get(f"{base}/gradio_api/call/{api}/{r.json()['event_id']}").text
                outcome = "answered" if "event: complete" in text else "refused: " + text.split("data: ")[-1][:60]
            else:
                outcome = f"HTTP {r.status_code}"
        return time.perf_counter() - start, outcome

    item = "x" * 7_999
    cases = {
        "support, 20 history items at the 8,000 cap (x runs)": (
            "support_chat",
            ["退款多久到账", [{"role": "user", "content": item}] * 20],
        ),
        "support, 20 × 40,000 x (the stall of the adversarial run)": (
            "support_chat",
            ["hi", [{"role": "user", "content": "x" * 40_000}] * 20],
        ),
        "text, 20 history items of 16,000 characters": (
            "generate_text",
            ["继续", "free", 16, 0.7, 0.95, -1, "", "", "chat", "", [{"role": "user", "content": "y" * 16_000}] * 20],
        ),
        "text, a 3 MB body": ("generate_text", ["z" * 3_000_000]),
    }
    rows = ["| hostile request | time (s) | outcome | /healthz p50 / p99 / max during it (ms) |", "|---|---|---|---|"]
    for name, (api, data) in cases.items():
        latencies: list[float] = []
        done = threading.Event()

        def poll(done: threading.Event = done, latencies: list[float] = latencies) -> None:
            with httpx.Client(timeout=30) as http:
                while not done.is_set():
                    t = time.perf_counter()
                    http.get(f"{base}/healthz")
                    latencies.append((time.perf_counter() - t) * 1000)
                    time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        seconds, outcome = call(api, data)
        done.set()
        poller.join()
        lat = latencies or [float("nan")]
        rows.append(
            f"| {name} | {seconds:.2f} | {outcome} | "
            f"{percentile(lat, 0.5):.0f} / {percentile(lat, 0.99):.0f} / {max(lat):.0f} |"
        )
    print("\n".join(rows))
    return "\n".join(rows)


if __name__ == "__main__":
    main()
