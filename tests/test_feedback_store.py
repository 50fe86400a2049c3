from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading

import pytest

from aigc_demo.errors import StorageError
from aigc_demo.feedback.store import JsonlStore, decode_line, encode_line


def test_round_trip_keeps_unicode_and_checksums(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    records = [{"id": str(i), "text": "好评 👍 <b>x</b>", "n": i} for i in range(5)]
    for r in records:
        store.append(r)
    raw = (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    assert "好评" in raw  # readable, not \\u-escaped
    result = store.read()
    assert result.records == records
    assert not result.torn_tail and result.corrupt_lines == []
    assert all("crc" in json.loads(line) for line in raw.splitlines())


def test_lone_surrogates_are_stored_safely(tmp_path):
    store = JsonlStore(tmp_path / "r.jsonl")
    store.append({"id": "1", "text": "bad \udc80 half"})
    assert store.read().records == [{"id": "1", "text": "bad \udc80 half"}]


def test_torn_tail_every_offset_returns_exactly_the_complete_records(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    for i in range(3):
        store.append({"id": str(i), "comment": "评论 " * 5})
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last_start, len(data)):
        path.write_bytes(data[:cut])
        result = store.read()
        assert [r["id"] for r in result.records] == ["0", "1"], cut
        assert result.torn_tail == (cut > last_start)
        assert result.corrupt_lines == []


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
    assert result.corrupt_lines == [2]


def test_decode_rejects_tampering():
    line = encode_line({"id": "a", "rating": "up"})
    assert decode_line(line) == {"id": "a", "rating": "up"}
    assert decode_line(line.replace(b"up", b"dn")) is None
    assert decode_line(b"not json\n") is None


@pytest.mark.parametrize("failing", ["write", "fsync"])
@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_write_or_fsync_failure_is_reported_and_leaves_nothing(tmp_path, monkeypatch, failing, code):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append({"id": "before"})
    size = path.stat().st_size
    real = getattr(os, failing)

    def broken(fd, *args):
        if failing == "write":
            real(fd, args[0][:7])  # a partial write first, then the error
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(StorageError) as info:
        store.append({"id": "lost", "big": "x" * 10000})
    assert info.value.message.startswith("not saved")
    if code == errno.ENOSPC:
        assert "disk is full" in info.value.message
    monkeypatch.setattr(os, failing, real)
    assert path.stat().st_size == size  # truncated back: nothing half-written
    store.append({"id": "after"})
    assert [r["id"] for r in store.read().records] == ["before", "after"]


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
    assert result.corrupt_lines == [] and not result.torn_tail


def _proc_writer(path: str, proc: int) -> None:
    store = JsonlStore(path)
    for i in range(25):
        store.append({"id": f"p{proc}-{i}", "pad": "y" * (100 + 3000 * (i % 4))})


def test_processes_never_interleave(tmp_path):
    path = tmp_path / "r.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_proc_writer, args=(str(path), p)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ids = [r["id"] for r in JsonlStore(path).read().records]
    assert sorted(ids) == sorted(f"p{p}-{i}" for p in range(3) for i in range(25))
