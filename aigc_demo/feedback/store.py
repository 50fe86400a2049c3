"""Append-only JSONL that keeps every acknowledged record.

Why it is built this way (see shared/design/RELIABILITY.md):

* Each record is encoded to **one bytes object** and written with ``os.write`` while an
  exclusive ``flock`` on a separate ``.lock`` file is held, so concurrent writers —
  threads or processes — never interleave lines. ``flock`` dies with its process, so a
  ``kill -9`` cannot leave a stale lock.
* ``append`` returns only after ``fsync`` succeeded. If the write or the fsync fails the
  file is truncated back to where it was and :class:`StorageError` is raised: the
  caller reports "not saved" instead of a false success, and nothing half-written is
  left for readers.
* Every line carries a CRC32 of its canonical JSON. Readers skip a torn last line (no
  newline, bad JSON or bad checksum) and count what they skipped; they never crash on a
  damaged file.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from aigc_demo.errors import StorageError

CRC_KEY = "crc"


def _canonical(record: dict[str, Any]) -> bytes:
    # ASCII-only canonical form: deterministic, and immune to lone surrogates.
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def checksum(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != CRC_KEY}
    return f"{zlib.crc32(_canonical(body)):08x}"


def encode_line(record: dict[str, Any]) -> bytes:
    """One record → one JSONL line (bytes, ending in ``\\n``) with its checksum."""
    line = {**{k: v for k, v in record.items() if k != CRC_KEY}, CRC_KEY: checksum(record)}
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from odd input: escape them instead
        data = json.dumps(line, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return data + b"\n"


def decode_line(raw: bytes) -> dict[str, Any] | None:
    """The record on a complete line, or None if it is corrupt."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or record.get(CRC_KEY) != checksum(record):
        return None
    record.pop(CRC_KEY)
    return record


@dataclass
class ReadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False
    """The last line was incomplete or corrupt (a crash mid-append); it was skipped."""
    corrupt_lines: list[int] = field(default_factory=list)
    """1-based numbers of corrupt lines *before* the last one (real damage)."""


class JsonlStore:
    """A JSONL file that many threads and processes can append to safely."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.fsync = fsync
        self._thread_lock = threading.Lock()  # flock is per open file, not per thread

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably; raise StorageError if it is not on disk."""
        data = encode_line(record)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._thread_lock, open(self.lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                self._append_locked(data)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"not saved: {_describe(exc)}") from exc

    def _append_locked(self, data: bytes) -> None:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):  # we hold the lock, so a short write can be resumed
                    n = os.write(fd, data[written:])
                    if n <= 0:
                        raise OSError(errno.EIO, "write returned 0")
                    written += n
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                # Leave no half record behind; the caller reports the failure.
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass  # readers still skip a torn tail by its checksum
                raise
        finally:
            os.close(fd)
        if created and self.fsync:
            _fsync_dir(self.path.parent)

    def iter_raw_lines(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as fh:
                yield from fh
        except FileNotFoundError:
            return

    def read(self) -> ReadResult:
        """Every valid record, in order; damage is counted, never raised."""
        result = ReadResult()
        lines = list(self.iter_raw_lines())
        for number, raw in enumerate(lines, start=1):
            is_last = number == len(lines)
            record = decode_line(raw) if raw.endswith(b"\n") else None
            if record is not None:
                result.records.append(record)
            elif is_last:
                result.torn_tail = True
            elif raw.strip():
                result.corrupt_lines.append(number)
        return result


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the data directory is not writable"
    return exc.strerror or type(exc).__name__
