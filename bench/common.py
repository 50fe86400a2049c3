"""Helpers shared by the benchmarks: machine description and RESULTS.md appends."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni", "asimd", "sve")


def cpu() -> str:
    """The CPU model and the vector extensions that decide kernel speed, e.g.
    "AMD EPYC (family 23, model 49), AVX2" — results differ by ISA, so every header says it."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = info.get("model name") or info.get("Model") or platform.machine()
    if info.get("cpu family") and info.get("model"):
        name += f" (family {info['cpu family']}, model {info['model']})"
    flags = set((info.get("flags") or info.get("Features") or "").split())
    isa = [f.upper().replace("ASIMD", "NEON") for f in ISA_FLAGS if f in flags] or ["no AVX2"]
    return f"{name}, {'/'.join(isa)}"


def machine() -> str:
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = "-"
    return (
        f"{os.cpu_count()} cores {cpu()}, Python {platform.python_version()}, torch {torch_version}, "
        f"{platform.system()} {platform.release()}"
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def record(title: str, command: str, table: str, notes: str = "") -> None:
    """Append one dated section to bench/RESULTS.md and print it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title} — {stamp}\n\n`{command}` on {machine()}\n\n{table}\n"
    if notes:
        section += f"\n{notes}\n"
    print(section)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section is appended by a script in bench/; newest last.\n")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(section)
