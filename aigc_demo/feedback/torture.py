"""Crash torture for the feedback store: kill -9 writers at random moments, count losses.

A writer process appends records (100 B – 64 KiB, small files so rotation is frequent)
and prints each id only after ``append`` returned — i.e. after fsync. The parent kills
it with SIGKILL at a random moment, reads what was acknowledged, and repeats. At the
end every acknowledged id must be on disk, no corrupt line may be accepted, and the
lock must be free. Used by the reliability tests and ``bench/feedback_store.py``; run
it on a deployment's own disk with ``python -m aigc_demo.feedback.torture DIR``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aigc_demo.feedback.store import JsonlStore


def writer(path: str, prefix: str, max_bytes: int, seed: int) -> None:
    rng = random.Random(seed)
    store = JsonlStore(path, max_bytes=max_bytes)
    out = sys.stdout
    i = 0
    while True:
        rid = f"{prefix}-{i}"
        store.append({"id": rid, "pad": "z" * rng.choice([100, 900, 4000, 5000, 20000, 65536])})
        out.write(rid + "\n")
        out.flush()
        i += 1


@dataclass
class TortureResult:
    kills: int = 0
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    corrupt: int = 0
    torn_tails: int = 0
    files: int = 0
    stale_lock: bool = False
    seconds: float = 0.0


def run(
    directory: Path, *, kills: int = 50, max_bytes: int = 64 * 1024, seed: int = 0, max_wait: float = 0.25
) -> TortureResult:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "torture.jsonl"
    rng = random.Random(seed)
    result = TortureResult()
    acked: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    started = time.perf_counter()
    for k in range(kills):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "import sys; from aigc_demo.feedback.torture import writer; "
                    f"writer({str(path)!r}, 'k{k}', {max_bytes}, {seed * 100000 + k})"
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        # Wait for the first ack so the kill lands mid-work, not during interpreter start.
        assert proc.stdout is not None  # stdout=PIPE
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0, max_wait))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        for line in (first + rest).decode().splitlines(keepends=True):
            if line.endswith("\n"):  # a complete id was printed after its fsync
                acked.append(line.strip())
        result.kills += 1
    store = JsonlStore(path)
    read = store.read()
    on_disk = {r["id"] for r in read.records}
    result.acknowledged = len(acked)
    result.lost = [a for a in acked if a not in on_disk]
    result.corrupt = len(read.corrupt_lines)
    result.torn_tails = len(read.torn_tails)
    result.files = len(store.files())
    with open(store.lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            result.stale_lock = True
    result.seconds = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--kills", type=int, default=200)
    args = parser.parse_args()
    r = run(args.directory, kills=args.kills)
    print(
        f"kills={r.kills} acknowledged={r.acknowledged} lost={len(r.lost)} corrupt={r.corrupt} "
        f"torn_tails={r.torn_tails} files={r.files} stale_lock={r.stale_lock} seconds={r.seconds:.1f}"
    )
    return 0 if not r.lost and not r.corrupt and not r.stale_lock else 1


if __name__ == "__main__":
    raise SystemExit(main())
