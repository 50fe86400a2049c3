"""What an unknown id costs on a large history, and keyed writes from two replicas.

    python bench/feedback_index.py [--mb 200] [--calls 1000] [--no-record]

**Lookups.** Writes an ``events`` history of ``--mb`` MB (generation events of ~2 kB, as the
app logs them) and, through ``FeedbackService.find_output`` (what ``/rate`` and a vote after a
restart use): the first lookup (it builds the index, streaming the files once), then 200
lookups of fresh random ids — what the amplification attack sent — with their latency and the
process RSS before and after. For comparison, one read of the whole stream, which is what
every such call cost before the index (issue 25, item 6).

**Two replicas.** Two processes, each a ``FeedbackService`` with its own files (as with
``AIGC_FEEDBACK_PER_PROCESS``) on one data dir, send ``--calls`` mixed calls between them:
ratings with idempotency keys (every key is sent by both: a retry that lands on the other
replica) and Arena votes through ``ArenaService.vote`` (every pair voted on by both). Counts
what must be zero: a key stored twice, a pair with two votes, a pair both replicas think
they voted first.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import record


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_history(folder: Path, mb: int) -> tuple[int, str]:
    from aigc_demo.feedback.schema import GenerationEvent
    from aigc_demo.feedback.store import encode_line

    folder.mkdir(parents=True, exist_ok=True)
    target, n, some_id = mb * 1024 * 1024, 0, ""
    with open(folder / "events.jsonl", "wb") as fh:
        size = 0
        while size < target:
            event = GenerationEvent(
                tab="text",
                model={"id": "packaged:qwen2.5-coder-0.5b-instruct"},
                params={"temperature": 0.7, "max_new_tokens": 256},
                output={"text": "这是一个生成的回答。" * 60},
                prompt="写一段奶茶店的宣传文案" * 8,
                latency_ms=1234.5,
            ).to_dict()
            line = encode_line({**event, "seq": n + 1})
            fh.write(line)
            size += len(line)
            n += 1
            if n == 17:
                some_id = event["output_id"]
    return n, some_id


def lookups(mb: int) -> list[str]:
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.feedback.store import read_stream

    data = Path(tempfile.mkdtemp(prefix="bench-index-"))
    n, known = write_history(data / "feedback", mb)
    service = FeedbackService(data)
    before = rss_mb()
    t0 = time.perf_counter()
    assert service.find_output(known) is not None
    build = time.perf_counter() - t0
    built = rss_mb()
    times = []
    rng = random.Random(1)
    for _ in range(200):
        t = time.perf_counter()
        assert service.find_output(f"{rng.getrandbits(128):032x}") is None
        times.append((time.perf_counter() - t) * 1000)
    after = rss_mb()
    t = time.perf_counter()
    whole = read_stream(data / "feedback", "events")
    scan = time.perf_counter() - t
    assert len(whole.records) == n
    times.sort()
    return [
        f"| history | {mb} MB, {n:,} events |",
        f"| first lookup (builds the index, once) | {build:.2f} s; RSS {before:.0f} → {built:.0f} MB |",
        f"| unknown id, 200 fresh ones: p50 / p99 / max | {statistics.median(times):.2f} / "
        f"{times[int(len(times) * 0.99) - 1]:.2f} / {times[-1]:.2f} ms |",
        f"| RSS across those 200 | {built:.0f} → {after:.0f} MB |",
        f"| before the index: one whole read, as every unknown id cost | {scan:.1f} s; RSS now {rss_mb():.0f} MB |",
    ]


def replica(args: tuple[str, str, int, int, list[str], list[str], str]) -> tuple[int, int]:
    data, name, calls, seed, keys, pairs, output_id = args
    from aigc_demo.config import Settings
    from aigc_demo.errors import AigcError
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.services.arena import ArenaService

    feedback = FeedbackService(Path(data), replica=name)
    text = SimpleNamespace(registry=SimpleNamespace(text_choices=lambda: ["packaged:qwen2.5-coder-0.5b-instruct"]))
    settings = Settings(profile="offline", data_dir=Path(data), preload=False)
    arena = ArenaService(text, None, feedback, settings)  # type: ignore[arg-type]
    rng = random.Random(seed)
    firsts = errors = 0
    for i in range(calls):
        try:
            if i % 2:
                feedback.rate(output_id, "up", idempotency_key=rng.choice(keys))
            else:
                _, new = arena.vote(rng.choice(pairs), rng.choice(["a", "b", "tie"]))
                firsts += new
        except AigcError:
            errors += 1
    return firsts, errors


def replicas(calls: int) -> list[str]:
    from aigc_demo.feedback.schema import ArenaPairEvent, GeneratedOutput
    from aigc_demo.feedback.service import FeedbackService

    data = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    setup = FeedbackService(data, replica="setup")
    output_id = setup.register(GeneratedOutput(tab="text", model={"id": "m"}, params={}, output={"text": "你好"}))
    pairs = []
    for _ in range(60):
        side = {"contestant": "x", "model": {"id": "m"}, "params": {}, "output_id": "", "output": {}}
        event = ArenaPairEvent(pair_id=os.urandom(16).hex(), kind="text", prompt="写一句问候", a=side, b=side)
        event.id = event.pair_id
        setup.append("events", event.to_dict())
        pairs.append(event.pair_id)
    keys = [f"key-{i:06d}" for i in range(120)]
    jobs = [(str(data), f"r{i}", calls // 2, i, keys, pairs, output_id) for i in range(2)]
    t = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(replica, jobs)
    seconds = time.perf_counter() - t
    ratings = setup.read("ratings").records
    votes = setup.read("arena").records
    dup_keys = len(ratings) - len({r["idempotency_key"] for r in ratings})
    dup_votes = len(votes) - len({v["pair_id"] for v in votes})
    firsts = sum(f for f, _ in results)
    return [
        f"| calls, two processes | {calls} ({seconds:.1f} s) |",
        f"| idempotency keys in play / stored / stored twice | {len(keys)} / {len(ratings)} / **{dup_keys}** |",
        f"| pairs voted / votes stored / pairs with two votes | {len({v['pair_id'] for v in votes})} / "
        f"{len(votes)} / **{dup_votes}** |",
        f"| votes reported as first, both replicas together (must equal votes stored) | {firsts} |",
        f"| errors | {sum(e for _, e in results)} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = ["| | |", "|---|---|", *replicas(args.calls), *lookups(args.mb)]
    table = "\n".join(rows)
    command = "python bench/feedback_index.py " + " ".join(sys.argv[1:])
    if args.no_record:
        print(table)
    else:
        record("Feedback index: unknown ids on a large history, keyed writes from two replicas", command, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
