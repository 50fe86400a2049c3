"""Helpers shared by the benchmarks: machine description and RESULTS.md appends."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = "-"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores {cpu}, Python {platform.python_version()}, torch {torch_version}, {platform.system()} {platform.release()}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def record(title: str, command: str, table: str, notes: str = "") -> None:
    """Append one dated section to bench/RESULTS.md and print it."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title} — {stamp}\n\n`{command}` on {machine()}\n\n{table}\n"
    if notes:
        section += f"\n{notes}\n"
    print(section)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section is appended by a script in bench/; newest last.\n")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(section)
