"""Append-only JSONL that keeps every acknowledged record.

Why it is built this way (README, "Data: what a rating stores", says what it guarantees):

* Each record is encoded to **one bytes object** and written with ``os.write`` while an
  exclusive ``flock`` on a separate ``.lock`` file is held, so concurrent writers —
  threads or processes — never interleave lines. ``flock`` dies with its process, so a
  ``kill -9`` cannot leave a stale lock.
* ``append`` returns only after ``fsync`` succeeded (and, when it created or rotated a
  file, after the directory was fsynced too). If the write or the fsync fails, the file is
  truncated back to where it was and :class:`StorageError` is raised: the caller reports
  "not saved" instead of a false success, and nothing half-written stays for readers.
  A failed fsync is never retried into a success (PostgreSQL's "fsyncgate" lesson).
* Every line carries a per-file sequence number ``seq`` and a CRC32 (``crc``) of its
  canonical JSON. Readers skip a torn last line (no newline: a crashed append) and
  count complete lines that fail to decode (bad JSON or checksum) as damage, last or not,
  so a file reads the same before and after later appends; they never raise. A writer that finds a
  torn tail left by a crashed writer truncates it before appending, so a new record is
  never glued onto a broken one (Kafka's log recovery does the same).
* Rotation — by size and by UTC day — happens under the same lock: the active file is
  renamed to ``NAME.<UTC time, µs>-<random>.jsonl`` and the next append starts a new one.
  Writers open the file per append, so no process keeps writing to a rotated file.

* Group commit: appends from the threads of one process go through one writer thread,
  which takes every record queued at that moment and writes them with one ``os.write``
  and one fsync, then wakes their callers. Callers are served in arrival order (a plain
  lock is unfair: under load some threads waited 70 ms while others cycled), and under
  load one fsync serves many ratings (bench/feedback_store.py measures it).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import queue
import secrets
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigc_demo.errors import Msg, StorageError

log = logging.getLogger(__name__)

CRC_KEY = "crc"
SEQ_KEY = "seq"
TAIL_CHUNK = 64 * 1024


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


MAX_LINE_BYTES = 4 * 1024 * 1024
"""The longest line a reader decodes (and a writer writes): a record is a rating with its
conversation, kilobytes; a line past this is damage or an attack, and decoding a 1 GB line
would cost gigabytes of RAM, so readers skip it (counted) without holding it in memory."""

Validator = Callable[[dict[str, Any]], str | None]
"""A record → None when its shape is what readers expect, else why not (``schema.check_shape``)."""


@dataclass
class ReadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_tails: list[str] = field(default_factory=list)
    """Files whose last line was incomplete or corrupt (a crash mid-append); it was skipped."""
    corrupt_lines: list[tuple[str, int]] = field(default_factory=list)
    """(file, 1-based line) of complete lines that do not decode, last or not: real damage."""
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    """(file, line, why) of lines that decode but are not read: too long, or an unexpected shape."""

    @property
    def torn_tail(self) -> bool:
        return bool(self.torn_tails)

    @property
    def damaged(self) -> int:
        """Complete lines not read, whatever the reason (what a person should look at)."""
        return len(self.corrupt_lines) + len(self.skipped)

    def merge(self, other: ReadResult) -> None:
        self.records.extend(other.records)
        self.torn_tails.extend(other.torn_tails)
        self.corrupt_lines.extend(other.corrupt_lines)
        self.skipped.extend(other.skipped)


def scan_lines(handle: Any, start: int = 0, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, int, bytes | None]]:
    """(offset, length, line) of every line from ``start``, streamed: the line is None when
    it is longer than ``max_line`` (it is skipped through in chunks, never held whole). The
    last line may lack its newline (a torn tail, or an append still being written)."""
    handle.seek(start)
    offset = start
    while True:
        raw = handle.readline(max_line + 1)
        if not raw:
            return
        if len(raw) > max_line and not raw.endswith(b"\n"):
            length = len(raw)
            while not raw.endswith(b"\n"):
                raw = handle.readline(1 << 20)
                if not raw:
                    break
                length += len(raw)
            yield offset, length, None
            offset += length
            continue
        yield offset, len(raw), raw
        offset += len(raw)


def read_file(path: Path, *, validate: Validator | None = None, max_line: int = MAX_LINE_BYTES) -> ReadResult:
    """Every valid record of one file, in order, read line by line; damage is counted, never raised."""
    result = ReadResult()
    try:
        handle = open(path, "rb")  # closed below; a missing file is an empty stream
    except FileNotFoundError:
        return result
    except OSError as exc:
        log.error("cannot read %s: %s", path, exc)
        result.corrupt_lines.append((str(path), 0))
        return result
    with handle:
        number = 0
        try:
            for _offset, _length, raw in scan_lines(handle, 0, max_line):
                number += 1
                if raw is None:
                    result.skipped.append((str(path), number, "too_long"))
                elif not raw.endswith(b"\n"):
                    # Only a line without its newline is a crashed append (a record and its newline go
                    # down in one write). The next append cuts it, so it is never buried.
                    result.torn_tails.append(str(path))
                elif (record := decode_line(raw)) is None:
                    # A complete line that does not decode is damage wherever it is, last or not: it
                    # is reported the same before and after later appends, for a person to look at.
                    if raw.strip():
                        result.corrupt_lines.append((str(path), number))
                elif validate is not None and (why := validate(record)) is not None:
                    result.skipped.append((str(path), number, why))
                else:
                    result.records.append(record)
        except OSError as exc:
            log.error("cannot read %s: %s", path, exc)
            result.corrupt_lines.append((str(path), number + 1))
    return result


def stream_files(directory: Path, name: str) -> list[Path]:
    """All files of a stream: ``NAME.jsonl``, ``NAME-<replica>.jsonl`` and their rotations."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob(f"{name}*.jsonl") if p.stem == name or p.stem[len(name)] in ".-"]
    return sorted(found)


def read_stream(directory: Path, name: str, *, validate: Validator | None = None) -> ReadResult:
    result = ReadResult()
    for path in stream_files(directory, name):
        result.merge(read_file(path, validate=validate))
    return result


@dataclass
class _Cursor:
    path: Path  # where the file is now (rotation renames it; the inode stays)
    offset: int = 0  # just past the last complete line read
    lines: int = 0


class Tail:
    """Reads only what was appended to a stream's files since the last call, by any process.

    Files are followed by inode, so a rotation (a rename) loses nothing and reads nothing
    twice; a line without its newline yet (an append in progress, or a torn tail) is read
    again next time. ``poll`` costs a directory listing and one ``stat`` per file when
    nothing is new, so it can run before every keyed write or lookup.
    """

    def __init__(self, directory: Path, name: str, *, validate: Validator | None = None) -> None:
        self.directory = Path(directory)
        self.name = name
        self.validate = validate
        self._cursors: dict[tuple[int, int], _Cursor] = {}
        self.skipped = 0
        self.lock = threading.Lock()  # one poll at a time; callers may hold it across their own use

    def poll(self) -> list[tuple[tuple[int, int], int, int, dict[str, Any]]]:
        """New valid records as (file key, offset, length, record), in file order."""
        return list(self.each())

    def each(self) -> Iterator[tuple[tuple[int, int], int, int, dict[str, Any]]]:
        """The same, one at a time: a first pass over a long history never holds it whole."""
        for path in stream_files(self.directory, self.name):
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed meanwhile: found under its new name next time
                continue
            key = (st.st_dev, st.st_ino)
            cursor = self._cursors.setdefault(key, _Cursor(path))
            cursor.path = path
            if st.st_size < cursor.offset:  # replaced in place by hand: read it again
                cursor.offset = cursor.lines = 0
            if st.st_size == cursor.offset:
                continue
            try:
                with open(path, "rb") as handle:
                    for offset, length, raw in scan_lines(handle, cursor.offset):
                        if raw is not None and not raw.endswith(b"\n"):
                            break  # not finished yet: read it next time
                        cursor.offset, cursor.lines = offset + length, cursor.lines + 1
                        record = decode_line(raw) if raw is not None else None
                        if record is None or (self.validate is not None and self.validate(record) is not None):
                            self.skipped += 1
                            continue
                        yield key, offset, length, record
            except FileNotFoundError:
                continue

    def path_of(self, key: tuple[int, int]) -> Path | None:
        cursor = self._cursors.get(key)
        return cursor.path if cursor else None


class StreamIndex:
    """Where each record of a stream is, by the values of some fields: a lookup is a dict
    hit and one ``pread``, never a scan of the history.

    Only locations are kept in memory (about 1.3 KB per record in CPython, however large the
    record: measured on an 88k-record history), and the index follows every writer's appends
    through a :class:`Tail`, so a miss is true as of the call: an unknown id costs a directory
    listing, not a read of a 200 MB history. The first value of a field wins, as it did when
    it was written.
    """

    def __init__(self, directory: Path, name: str, fields: tuple[str, ...], *, validate: Validator | None = None):
        self.fields = fields
        self.tail = Tail(directory, name, validate=validate)
        self._where: dict[str, dict[str, tuple[tuple[int, int], int, int]]] = {f: {} for f in fields}

    def refresh(self) -> int:
        """Take in what was appended since the last call; return how many records that was."""
        count = 0
        with self.tail.lock:
            for key, offset, length, record in self.tail.each():
                count += 1
                for name in self.fields:
                    value = record.get(name)
                    if isinstance(value, str) and value:
                        self._where[name].setdefault(value, (key, offset, length))
        return count

    def get(self, field_name: str, value: str, *, refresh: bool = True) -> dict[str, Any] | None:
        if refresh:
            self.refresh()
        where = self._where[field_name].get(value)
        if where is None:
            return None
        key, offset, length = where
        path = self.tail.path_of(key)
        try:
            with open(path, "rb") as handle:  # type: ignore[arg-type]
                handle.seek(offset)
                return decode_line(handle.read(length))
        except (OSError, TypeError):  # the file was deleted by hand
            return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._where.values())


@dataclass
class _Pending:
    record: dict[str, Any]
    stored: dict[str, Any] | None = None
    error: OSError | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class JsonlStore:
    """A JSONL file that many threads and processes can append to safely."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        max_bytes: int | None = None,
        rotate_daily: bool = False,
        extra_lock: Callable[[], AbstractContextManager[Any]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.rotate_daily = rotate_daily
        self.extra_lock = extra_lock  # e.g. CommitScheduler.lock: uploads see whole lines only
        self.clock = clock
        self._thread_lock = threading.Lock()  # flock is per open file, not per thread
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._writer_start = threading.Lock()
        # (st_dev, st_ino, size) -> (last seq, day of first record): skips re-reading the
        # tail when no other process wrote since our last append.
        self._cache: dict[tuple[int, int], tuple[int, int, str]] = {}

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold every lock an append holds (also used by repair).

        Order: our thread lock, then the extra lock (Hub scheduler), then flock.
        """
        with ExitStack() as stack:
            stack.enter_context(self._thread_lock)
            if self.extra_lock is not None:
                stack.enter_context(self.extra_lock())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = stack.enter_context(open(self.lock_path, "a"))
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record durably and return it as stored (with ``seq``).

        Raises StorageError ("not saved: …") if it is not on disk.
        """
        if len(encode_line(record)) > MAX_LINE_BYTES:  # readers would skip it: refuse it now, truthfully
            raise StorageError("not_saved_too_big", mb=MAX_LINE_BYTES // 1024 // 1024)
        mine = _Pending(record)
        self._ensure_writer()
        self._queue.put(mine)
        mine.done.wait()
        if mine.error is not None:
            raise StorageError("not_saved", why=_describe(mine.error)) from mine.error
        assert mine.stored is not None
        return mine.stored

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer_pid == os.getpid() and self._writer.is_alive():
            return
        with self._writer_start:
            if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                if self._writer_pid != os.getpid():  # forked: the parent's queue, thread and lock are not ours
                    self._queue = queue.SimpleQueue()
                    self._thread_lock = threading.Lock()
                self._writer_pid = os.getpid()
                self._writer = threading.Thread(target=self._write_loop, name=f"jsonl-{self.path.name}", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            with self.locked():
                stored = self._append_locked([p.record for p in batch])
            for p, s in zip(batch, stored, strict=True):
                p.stored = s
        except BaseException as exc:  # noqa: BLE001 - every caller must wake up, with the reason
            error = exc if isinstance(exc, OSError) else OSError(errno.EIO, f"{type(exc).__name__}: {exc}")
            for p in batch:
                p.error = error
        finally:
            for p in batch:
                p.done.set()

    def _append_locked(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        now = self.clock()
        fd, created = self._open()
        try:
            st = os.fstat(fd)
            size = st.st_size
            if size:
                size = self._truncate_torn_tail(fd, size)
            seq, day = self._state(fd, st, size)
            if size and self._should_rotate(size, day, now):
                os.close(fd)
                fd = -1
                self._rotate(now)
                fd, created = self._open()
                st = os.fstat(fd)
                size, seq, day = 0, 0, ""
            stored = [{**r, SEQ_KEY: seq + i} for i, r in enumerate(records, start=1)]
            data = b"".join(encode_line(r) for r in stored)
            self._write_durably(fd, data, size)
            last = seq + len(records)
            self._cache = {(st.st_dev, st.st_ino): (size + len(data), last, day or now.strftime("%Y-%m-%d"))}
        finally:
            if fd >= 0:
                os.close(fd)
        if created and self.fsync:
            _fsync_dir(self.path.parent)
        return stored

    def _open(self) -> tuple[int, bool]:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return fd, created

    def _write_durably(self, fd: int, data: bytes, start: int) -> None:
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

    def _truncate_torn_tail(self, fd: int, size: int) -> int:
        """If the file does not end in a newline, cut back to the last complete line."""
        if os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = _last_newline_end(fd, size)
        log.warning("%s: removing a torn tail of %d bytes left by a crashed writer", self.path, size - end)
        os.ftruncate(fd, end)
        if self.fsync:
            os.fsync(fd)
        return end

    def _state(self, fd: int, st: os.stat_result, size: int) -> tuple[int, str]:
        """(last seq, day of the first record) of the current file."""
        if size == 0:
            return 0, ""
        cached = self._cache.get((st.st_dev, st.st_ino))
        if cached and cached[0] == size:
            return cached[1], cached[2]
        seq = _last_seq(fd, size)
        first = os.pread(fd, min(size, TAIL_CHUNK), 0).split(b"\n", 1)[0]
        day = ""
        try:
            day = str(json.loads(first).get("ts", ""))[:10]
        except (ValueError, AttributeError):
            pass
        if not day:
            day = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%d")
        return seq, day

    def _should_rotate(self, size: int, day: str, now: datetime) -> bool:
        if self.max_bytes is not None and size >= self.max_bytes:
            return True
        return self.rotate_daily and bool(day) and day != now.strftime("%Y-%m-%d")

    def _rotate(self, now: datetime) -> Path:
        target = self.path.with_name(f"{self.path.stem}.{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}{self.path.suffix}")
        os.replace(self.path, target)
        if self.fsync:
            _fsync_dir(self.path.parent)
        self._cache.clear()
        log.info("rotated %s -> %s", self.path.name, target.name)
        return target

    # -- reading and repair -----------------------------------------------------------------

    def files(self) -> list[Path]:
        """Rotated segments (oldest first), then the active file."""
        rotated = sorted(self.path.parent.glob(f"{self.path.stem}.*{self.path.suffix}"))
        return rotated + ([self.path] if self.path.exists() else [])

    def read(self) -> ReadResult:
        result = ReadResult()
        for path in self.files():
            result.merge(read_file(path))
        return result


def repair_file(path: Path, *, backup_suffix: str | None = None) -> tuple[int, Path | None]:
    """Truncate a torn last line (no newline: a crashed append) under the writers' lock,
    keeping a backup.

    Returns (bytes removed, backup path). Complete lines that do not decode are not touched,
    wherever they are: that is real damage for a person to look at (``verify`` reports them).
    """
    store = JsonlStore(path)
    with store.locked():
        result = read_file(path)
        if not result.torn_tail:
            return 0, None
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1  # the torn tail has no newline of its own
        backup = path.with_name(path.name + (backup_suffix or f".bak-{_utc_now():%Y%m%dT%H%M%S}"))
        backup.write_bytes(data)
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        return len(data) - end, backup


def _last_newline_end(fd: int, size: int) -> int:
    """Offset just after the last newline before ``size`` (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - TAIL_CHUNK)
        chunk = os.pread(fd, pos - start, start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


def _last_seq(fd: int, size: int) -> int:
    """The ``seq`` of the last complete line (scanning back past damaged lines)."""
    end = size
    for _ in range(16):
        if end <= 0:
            return 0
        start = _last_newline_end(fd, end - 1)
        line = os.pread(fd, end - start, start)
        try:
            value = json.loads(line).get(SEQ_KEY)
            if isinstance(value, int):
                return value
        except (ValueError, AttributeError):
            pass
        end = start
    return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(exc: OSError) -> Msg | str:
    """Why a write failed: a catalogue message, or the system's own words."""
    if exc.errno == errno.ENOSPC:
        return Msg("why_disk_full")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Msg("why_not_writable")
    return exc.strerror or type(exc).__name__
