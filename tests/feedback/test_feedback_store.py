"""The JSONL store: format, checksums, sequence numbers, torn tails, faults, rotation, concurrency."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from aigc_demo.errors import StorageError
from aigc_demo.feedback.store import JsonlStore, decode_line, encode_line, read_file, read_stream, repair_file

pytestmark = pytest.mark.reliability


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seq"} for r in records]


def test_round_trip_keeps_unicode_checksums_and_sequence(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    records = [{"id": str(i), "text": "好评 👍 <b>x</b>", "n": i} for i in range(5)]
    stored = [store.append(r) for r in records]
    assert [s["seq"] for s in stored] == [1, 2, 3, 4, 5]
    raw = (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    assert "好评" in raw  # readable, not \\u-escaped
    result = store.read()
    assert _strip(result.records) == records
    assert [r["seq"] for r in result.records] == [1, 2, 3, 4, 5]
    assert not result.torn_tail and result.corrupt_lines == []
    assert all("crc" in json.loads(line) for line in raw.splitlines())


def test_sequence_continues_across_store_instances(tmp_path):
    JsonlStore(tmp_path / "r.jsonl").append({"id": "a"})
    JsonlStore(tmp_path / "r.jsonl").append({"id": "b"})
    assert [r["seq"] for r in JsonlStore(tmp_path / "r.jsonl").read().records] == [1, 2]


def test_lone_surrogates_are_stored_safely(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    store.append({"id": "1", "text": "bad \udc80 half"})
    assert _strip(store.read().records) == [{"id": "1", "text": "bad \udc80 half"}]


def test_torn_tail_every_offset_and_repair(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    for i in range(3):
        store.append({"id": str(i), "comment": "评论 " * 5})
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last_start, len(data)):
        path.write_bytes(data[:cut])
        result = read_file(path)
        assert [r["id"] for r in result.records] == ["0", "1"], cut
        assert result.torn_tail == (cut > last_start)
        assert result.corrupt_lines == []
        removed, backup = repair_file(path, backup_suffix=f".bak{cut}")
        assert path.read_bytes() == data[:last_start]
        assert removed == cut - last_start
        assert (backup is None) == (cut == last_start)
        if backup is not None:
            assert backup.read_bytes() == data[:cut]


def test_a_writer_cuts_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append({"id": "a"})
    with open(path, "ab") as fh:
        fh.write(b'{"id":"half-writt')  # what a kill -9 mid-write leaves
    store2 = JsonlStore(path)
    store2.append({"id": "b"})
    result = read_file(path)
    assert [r["id"] for r in result.records] == ["a", "b"] and not result.torn_tail
    assert [r["seq"] for r in result.records] == [1, 2]


def test_a_damaged_complete_last_line_reads_the_same_before_and_after_an_append(tmp_path):
    """A last line that ends in a newline but does not decode is damage, not a torn append:
    it was reported as a torn tail (fine) and then buried in the middle by the next append
    (corrupt, no longer repairable). Now it is reported once, the same way, every time."""
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append({"id": "a"})
    with open(path, "ab") as fh:
        fh.write(b'{"id":"b","comment":"\xe8\xaf\x84\xe8\xae\xba","crc":1}\n')  # bad checksum, complete line
    before = read_file(path)
    assert not before.torn_tail and before.corrupt_lines == [(str(path), 2)]
    assert repair_file(path) == (0, None)  # nothing a writer crash explains: left for a person
    JsonlStore(path).append({"id": "c"})
    after = read_file(path)
    assert after.corrupt_lines == [(str(path), 2)] and not after.torn_tail
    assert [r["id"] for r in after.records] == ["a", "c"]


def test_corrupt_middle_line_is_reported_not_raised(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    for i in range(3):
        store.append({"id": str(i)})
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"1"', b'"X"')  # checksum no longer matches
    path.write_bytes(b"".join(lines))
    result = store.read()
    assert [r["id"] for r in result.records] == ["0", "2"]
    assert result.corrupt_lines == [(str(path), 2)]
    assert repair_file(path) == (0, None)  # middle damage is for a person, not repair


def test_decode_rejects_tampering():
    line = encode_line({"id": "a", "rating": "up"})
    assert decode_line(line) == {"id": "a", "rating": "up"}
    assert decode_line(line.replace(b"up", b"dn")) is None
    assert decode_line(b"not json\n") is None
    assert decode_line(b"[1, 2]\n") is None


@pytest.mark.parametrize("failing", ["write", "fsync"])
@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_write_or_fsync_failure_is_reported_and_leaves_nothing(tmp_path, monkeypatch, failing, code):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append({"id": "before"})
    size = path.stat().st_size
    real = getattr(os, failing)
    calls = []

    def broken(fd, *args):
        calls.append(1)
        if failing == "write":
            real(fd, args[0][:7])  # a partial write first, then the error
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(StorageError) as info:
        store.append({"id": "lost", "big": "x" * 10000})
    assert info.value.message.startswith("not saved")
    if code == errno.ENOSPC:
        assert "disk is full" in info.value.message
    assert len(calls) == 1  # a failed fsync is not retried into a false success
    monkeypatch.setattr(os, failing, real)
    assert path.stat().st_size == size  # truncated back: nothing half-written
    store.append({"id": "after"})
    assert [r["id"] for r in store.read().records] == ["before", "after"]


def test_rotation_by_size_keeps_everything(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl", max_bytes=600)
    for i in range(30):
        store.append({"id": str(i), "pad": "p" * 50})
    files = store.files()
    assert len(files) > 3 and files[-1].name == "r.jsonl"
    assert all(f.stat().st_size < 600 + 200 for f in files)
    records = store.read().records
    assert [r["id"] for r in records] == [str(i) for i in range(30)]
    assert records[0]["seq"] == 1 and min(r["seq"] for r in records[1:]) == 1  # seq restarts per file
    assert [r["id"] for r in read_stream(tmp_path, "r").records] == [str(i) for i in range(30)]


def test_rotation_by_day(tmp_path):
    now = [datetime(2026, 11, 23, 23, 59, tzinfo=UTC)]
    store = JsonlStore(tmp_path / "r.jsonl", rotate_daily=True, clock=lambda: now[0])
    store.append({"id": "a", "ts": "2026-11-23T23:59:00Z"})
    store.append({"id": "b", "ts": "2026-11-23T23:59:30Z"})
    now[0] += timedelta(minutes=2)
    store.append({"id": "c", "ts": "2026-11-24T00:01:00Z"})
    files = store.files()
    assert len(files) == 2 and files[0].name.startswith("r.20261124T0001")
    assert [r["id"] for r in read_file(files[0]).records] == ["a", "b"]
    assert [r["id"] for r in read_file(files[1]).records] == ["c"]


def test_threads_never_interleave_large_records(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    sizes = [100, 5000, 70000]

    def worker(t: int) -> None:
        for i in range(20):
            store.append({"id": f"{t}-{i}", "pad": "x" * sizes[i % 3]})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    result = store.read()
    ids = [r["id"] for r in result.records]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert [r["seq"] for r in result.records] == list(range(1, 121))
    assert result.corrupt_lines == [] and not result.torn_tail


def _proc_writer(path: str, proc: int, max_bytes: int | None) -> None:
    store = JsonlStore(path, max_bytes=max_bytes)
    errors = []

    def thread_writer(t: int) -> None:
        try:
            for i in range(15):
                size = [100, 3000, 5000, 65536][(i + t) % 4]
                store.append({"id": f"p{proc}-t{t}-{i}", "pad": "y" * size})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("max_bytes", [None, 200_000])
def test_processes_times_threads_never_interleave(tmp_path, max_bytes):
    path = tmp_path / "r.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_proc_writer, args=(str(path), p, max_bytes)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = JsonlStore(path).read()
    ids = [r["id"] for r in result.records]
    expected = {f"p{p}-t{t}-{i}" for p in range(4) for t in range(3) for i in range(15)}
    assert len(ids) == len(expected) and set(ids) == expected
    assert result.corrupt_lines == [] and not result.torn_tail
    for f in JsonlStore(path).files():  # per file, seq is 1..n without gaps
        seqs = [r["seq"] for r in read_file(f).records]
        assert seqs == list(range(1, len(seqs) + 1))


def test_kill_dash_nine_loses_no_acknowledged_record(tmp_path):
    from aigc_demo.feedback.torture import run

    # Each kill lands 0-100 ms after the writer's first acknowledged rating, while it appends
    # and rotates (~90 ratings per writer); bench/feedback_store.py runs longer lives.
    result = run(tmp_path, kills=50, max_bytes=48 * 1024, seed=1, max_wait=0.1)
    assert result.kills == 50
    assert result.acknowledged > 50
    assert result.lost == []
    assert result.corrupt == 0
    assert not result.stale_lock
    assert result.files > 10  # rotation happened often, so kills also hit it


_RATER = r"""
import sys
from aigc_demo.feedback.service import FeedbackService, GeneratedOutput

data, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
service = FeedbackService(data)
for i in range(start, start + count):
    oid = f"{i:032x}"
    if service.find_output(oid) is None:
        service.register(GeneratedOutput(tab="text", model={"id": "m"}, params={}, output={"text": f"答案 {i}"},
                                         prompt=f"问题 {i}", output_id=oid))
    record = service.rate(oid, "up" if i % 2 else "down", f"评论 {i}", idempotency_key=f"click-{i:08d}")
    print(f"ack {i} {record.id}", flush=True)  # acknowledged: the client was told "saved"
"""


def test_retries_after_kill_dash_nine_store_each_rating_exactly_once(tmp_path):
    """A client rates 40 outputs with one key each; the server is killed (-9) three times
    mid-burst; the client then retries every rating, acknowledged or not. Each key ends up in
    the file exactly once, and an acknowledged retry returns the record id it got first."""
    import signal
    import subprocess
    import sys
    import time

    from aigc_demo.feedback.store import read_stream

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    acked: dict[int, str] = {}
    start = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _RATER, str(tmp_path), str(start), "40"], stdout=subprocess.PIPE, text=True, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("ack "):
                _, i, rid = line.split()
                acked[int(i)] = rid
                if len(acked) >= start + 5:  # a few acknowledged, the next one in flight
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        start = len(acked)
    retry = subprocess.run(
        [sys.executable, "-c", _RATER, str(tmp_path), "0", "40"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert retry.returncode == 0, retry.stderr[-2000:]
    again = dict(line.split()[1:] for line in retry.stdout.splitlines() if line.startswith("ack "))
    stored = read_stream(tmp_path / "feedback", "ratings")
    keys = [r["idempotency_key"] for r in stored.records]
    assert sorted(keys) == [f"click-{i:08d}" for i in range(40)]  # every rating, none twice
    assert all(again[str(i)] == rid for i, rid in acked.items())  # a retry gets the first answer
    assert not stored.corrupt_lines and len(acked) >= 15
