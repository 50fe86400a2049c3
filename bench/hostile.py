"""What hostile input costs: PII scrubbing on long adversarial runs (linear, not quadratic).

    python bench/hostile.py [--no-record]

Every pattern in ``feedback/pii.py`` has bounded repeats, so the time per character stays
flat from 10 kB to 1 MB. The run that stalled the server (40,000 "x" in a support history)
took 1.8 s per scrub with the unbounded e-mail pattern.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu, record  # noqa: E402

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
    args = parser.parse_args()
    from aigc_demo.feedback.pii import scrub_text

    sizes = (10_000, 100_000, 1_000_000)
    rows = ["| input | " + " | ".join(f"{n // 1000} kB (ms)" for n in sizes) + " | µs per kB at 1 MB |", "|---|" + "---|" * (len(sizes) + 1)]
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
    if not args.no_record:
        record("PII scrub on adversarial input", "python bench/hostile.py", table)


if __name__ == "__main__":
    main()
