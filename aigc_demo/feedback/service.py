"""Rate what the app generated.

Every finished generation is registered here as a :class:`GeneratedOutput` (the full
context a rating needs) under a fresh ``output_id``; :meth:`FeedbackService.rate`
turns an output id plus 👍/👎 into a self-contained :class:`FeedbackRecord` and appends
it durably. Outputs are kept in a bounded in-memory log: a rating normally follows its
output within minutes, and the record copies everything it needs, so the JSONL file
stays the single source of truth.

All JSONL streams of the app (``ratings``, ``events``, ``handoffs``) live in ``DATA_DIR/feedback``
and are written through :meth:`FeedbackService.append`, so they share the same
guarantees: PII scrubbing, rotation, one file per process when asked, and the Hub
sync lock.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import logging
import os
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from aigc_demo import __version__
from aigc_demo.errors import InvalidInput, NotFound, StorageError, Term
from aigc_demo.feedback.pii import scrub as scrub_pii
from aigc_demo.feedback.schema import (
    RATINGS,
    FeedbackRecord,
    GeneratedOutput,
    GenerationEvent,
    shape_check,
    utc_now,
)
from aigc_demo.feedback.store import JsonlStore, ReadResult, StreamIndex, Tail, read_stream

log = logging.getLogger(__name__)

MAX_COMMENT_CHARS = 2000
MAX_CORRECTION_CHARS = 8000  # a better answer may be as long as an answer
OUTPUT_ID = re.compile(r"^[0-9a-f]{32}$")
REASONS = ("inaccurate", "off-topic", "unsafe", "low quality", "too slow", "great")


class OutputLog:
    """Recent outputs by id, bounded (LRU) so a long demo cannot grow memory."""

    def __init__(self, capacity: int = 5000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, GeneratedOutput] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, output: GeneratedOutput) -> GeneratedOutput:
        with self._lock:
            self._items[output.output_id] = output
            self._items.move_to_end(output.output_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return output

    def get(self, output_id: str) -> GeneratedOutput | None:
        with self._lock:
            return self._items.get(output_id)


class FeedbackService:
    """Registers outputs, stores ratings and the app's other JSONL streams."""

    def __init__(
        self,
        data_dir: Path,
        *,
        outputs: OutputLog | None = None,
        scrub_pii: bool = True,
        max_bytes: int | None = 64 * 1024 * 1024,
        rotate_daily: bool = True,
        replica: str | None = None,
        extra_lock: Callable[[], AbstractContextManager[Any]] | None = None,
        hub_scheduler: Any = None,
    ) -> None:
        self.folder = Path(data_dir) / "feedback"
        self.outputs = outputs or OutputLog()
        self.scrub_pii = scrub_pii
        self.replica = replica
        self.hub_scheduler = hub_scheduler
        self._new_store = functools.partial(
            JsonlStore, max_bytes=max_bytes, rotate_daily=rotate_daily, extra_lock=extra_lock
        )
        self._stores: dict[str, JsonlStore] = {}
        self._stores_lock = threading.Lock()
        self._indexes: dict[str, StreamIndex] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self.failures: dict[str, dict[str, Any]] = {}  # stream → {count, last_ts, error} since start

    @classmethod
    def from_settings(cls, settings: Any) -> FeedbackService:
        from aigc_demo.feedback.hub import start_hub_sync

        folder = Path(settings.data_dir) / "feedback"
        scheduler = start_hub_sync(
            settings.hub_dataset, folder, every_minutes=settings.hub_every_minutes, private=settings.hub_private
        )
        per_process = settings.feedback_per_process or scheduler is not None
        return cls(
            settings.data_dir,
            scrub_pii=settings.scrub_pii,
            max_bytes=int(settings.feedback_max_mb * 1024 * 1024),
            rotate_daily=settings.feedback_rotate_daily,
            replica=(settings.replica_id or default_replica()) if per_process else None,
            extra_lock=(lambda: scheduler.lock) if scheduler is not None else None,
            hub_scheduler=scheduler,
        )

    def store(self, name: str) -> JsonlStore:
        """The writer for stream ``name`` (``ratings``, ``handoffs``...)."""
        with self._stores_lock:
            if name not in self._stores:
                filename = f"{name}-{self.replica}.jsonl" if self.replica else f"{name}.jsonl"
                self._stores[name] = self._new_store(self.folder / filename)
            return self._stores[name]

    @property
    def ratings(self) -> JsonlStore:
        return self.store("ratings")

    def append(self, name: str, record: dict[str, Any], *, scrub: bool = True) -> dict[str, Any]:
        """Scrub (if on, and ``scrub``) and append durably; raises StorageError when not saved.

        ``scrub=False`` is for the company's own words that someone must read as written (an
        operator's reply with a shop's phone number); customers' and testers' text is scrubbed.

        Every failure is also counted per stream (``failures``; ``failing`` until the next
        append of that stream succeeds), so an operator sees in
        ``/healthz`` and Insights that, say, handoffs are not being stored — a log line alone
        is easy to miss while customers are told a colleague will read their conversation.
        """
        try:
            stored = self.store(name).append(scrub_pii(record) if self.scrub_pii and scrub else record)
        except StorageError as exc:
            self.note_failure(name, exc.message)
            raise
        self.note_success(name)
        return stored

    def note_failure(self, name: str, error: str) -> None:
        """Count a failed write of ``name`` (a stream, or "images"): ``/healthz`` says degraded."""
        with self._stores_lock:
            seen = self.failures.setdefault(name, {"count": 0})
            seen.update(count=seen["count"] + 1, last_ts=utc_now(), error=error, failing=True)

    def note_success(self, name: str) -> None:
        if self.failures.get(name, {}).get("failing"):  # space was freed: writing works again
            with self._stores_lock:
                self.failures[name].update(failing=False, recovered_ts=utc_now())

    def read(self, name: str) -> ReadResult:
        """Every process's files of a stream, rotations included, in time order."""
        result = read_stream(self.folder, name, validate=shape_check(name))
        result.records.sort(key=lambda r: (str(r.get("ts", "")), r.get("seq", 0)))
        return result

    def register(self, output: GeneratedOutput) -> str:
        """Remember an output for rating and log it as a generation event.

        The ``events`` stream holds every generation (rated or not), so coverage (rated /
        generated) and latency are known, and an output can still be rated after a restart.
        A failed event write is logged, not raised: the user still gets their answer.
        """
        self.outputs.add(output)
        event = GenerationEvent(id=output.output_id, app_version=__version__, **dataclasses.asdict(output))
        try:
            self.append("events", event.to_dict())
        except StorageError as exc:
            log.error("generation event %s not saved: %s", output.output_id, exc.message)
        return output.output_id

    def find_output(self, output_id: str) -> GeneratedOutput | None:
        """An output from memory, or — after a restart, or from another replica — from the events log."""
        output = self.outputs.get(output_id)
        if output is not None or not OUTPUT_ID.match(output_id or ""):
            return output  # ids are uuid4 hex: anything else cannot be in the log
        event = self.lookup("events", "output_id", output_id)
        if event is None or event.get("type") != "generation":
            return None
        fields = {f.name for f in dataclasses.fields(GeneratedOutput)}
        return self.outputs.add(GeneratedOutput(**{k: v for k, v in event.items() if k in fields}))

    # Which fields of which streams are looked up by value (everything else is read whole,
    # by the admin views and the CLI).
    INDEXED: ClassVar[dict[str, tuple[str, ...]]] = {
        "events": ("output_id", "pair_id"),
        "ratings": ("idempotency_key", "id"),
        "arena": ("pair_id",),
    }

    def lookup(self, stream: str, field: str, value: str) -> dict[str, Any] | None:
        """The first record of ``stream`` whose ``field`` is ``value``, from every writer's
        files, through an index that reads only what was appended since the last lookup."""
        with self._stores_lock:
            index = self._indexes.get(stream)
            if index is None:
                index = self._indexes[stream] = StreamIndex(
                    self.folder, stream, self.INDEXED[stream], validate=shape_check(stream)
                )
        return index.get(field, value)

    @contextmanager
    def keyed_write(self, stream: str) -> Iterator[None]:
        """Hold the stream's key lock — a thread lock and a ``flock`` shared by every process on
        this data dir — around "look the key up, append if new", so one idempotency key or one
        Arena pair has one record even when two replicas get it at once. The lookup inside
        reads the other writers' appends first (``lookup`` refreshes the index)."""
        with self._stores_lock:
            lock = self._key_locks.setdefault(stream, threading.Lock())
        with lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{stream}.keys.lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield

    def tail(self, stream: str) -> Tail:
        """A reader of what is appended to ``stream`` from now on (its first poll returns the history)."""
        return Tail(self.folder, stream, validate=shape_check(stream))

    def rate(
        self,
        output_id: str,
        rating: str,
        comment: str = "",
        *,
        reasons: list[str] | None = None,
        session_id: str = "",
        item: int | None = None,
        idempotency_key: str | None = None,
        amends: str | None = None,
        correction: str = "",
    ) -> FeedbackRecord:
        """Append a rating; raise InvalidInput / NotFound / StorageError with a clear message.

        ``correction``: a better answer the tester wrote (text outputs); training takes it as
        an SFT example and prefers it to the rated answer (``feedback/training_data.py``).

        With ``idempotency_key`` (one per click or API call), a retry — after a timeout, a
        dropped connection or a restart — returns the record already stored and writes
        nothing; the same key with another rating or output is refused.

        ``amends``: the id of an earlier rating of the same output (and image) that this one
        updates — a reason or a comment added after the click. It is a new record (the file
        stays append-only); every count takes the latest rating of an output, so it replaces
        the earlier one there, and the record says which one it replaces.
        """
        for name, value in (
            ("output_id", output_id),
            ("rating", rating),
            ("comment", comment),
            ("correction", correction),
        ):
            if value is not None and not isinstance(value, str):
                raise InvalidInput("value_not_text", name=Term(name), got=type(value).__name__)
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise InvalidInput("item_not_whole", got=type(item).__name__)
        if reasons is not None and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
            raise InvalidInput("reasons_not_words")
        key = _idempotency_key(idempotency_key)

        if amends is not None:
            earlier = self.lookup("ratings", "id", amends) if isinstance(amends, str) else None
            same_item = earlier is not None and earlier.get("item") == (
                item if item is not None and item >= 0 else None
            )
            if earlier is None or earlier.get("output_id") != (output_id or "").strip() or not same_item:
                raise InvalidInput("bad_amends")

        def store() -> FeedbackRecord:
            return self._new_rating(output_id, rating, comment, reasons, session_id, item, key, amends, correction)

        if key is None:
            return store()
        with self.keyed_write("ratings"):
            earlier = self.lookup("ratings", "idempotency_key", key)
            if earlier is not None:
                done = FeedbackRecord.from_dict(earlier)
                if done.output_id != (output_id or "").strip() or done.rating != (rating or "").strip().lower():
                    raise InvalidInput("idempotency_key_reused")
                return done
            return store()

    def _new_rating(
        self,
        output_id: str,
        rating: str,
        comment: str,
        reasons: list[str] | None,
        session_id: str,
        item: int | None,
        key: str | None,
        amends: str | None = None,
        correction: str | None = "",
    ) -> FeedbackRecord:
        """Validate the values and append one rating record (``rate`` has checked the types)."""
        rating = (rating or "").strip().lower()
        if rating not in RATINGS:
            raise InvalidInput("bad_rating", got=repr(rating[:20]))
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInput("comment_too_long", length=len(comment), limit=MAX_COMMENT_CHARS)
        reasons = [r for r in (reasons or []) if r in REASONS]
        correction = (correction or "").strip()
        if len(correction) > MAX_CORRECTION_CHARS:
            raise InvalidInput("correction_too_long", length=len(correction), limit=MAX_CORRECTION_CHARS)
        output = self.find_output((output_id or "").strip())
        if output is None:
            raise NotFound("unknown_output", oid=repr(str(output_id)[:64]))
        params, result = output.params, output.output
        if item is not None and item >= 0:
            images = output.output.get("images") or []
            if not 0 <= item < len(images):
                raise InvalidInput("item_out_of_range", hi=max(len(images) - 1, 0), got=item)
            # Rate one image of a batch: the record describes that image alone.
            params = {**output.params, "seed": images[item].get("seed", output.params.get("seed"))}
            result = images[item]
        else:
            item = None
        record = FeedbackRecord(
            tab=output.tab,
            output_id=output.output_id,
            rating=rating,
            comment=comment,
            reasons=reasons,
            model=output.model,
            params=params,
            prompt=output.prompt,
            messages=output.messages,
            output=result,
            item=item,
            sources=output.sources,
            latency_ms=output.latency_ms,
            session_id=session_id or output.session_id,
            variant=output.variant,
            app_version=__version__,
            idempotency_key=key,
            amends=amends,
            correction=correction,
        )
        try:
            stored = self.append("ratings", record.to_dict())
        except StorageError as exc:
            # "rating not saved: the disk is full"
            raise StorageError("rating_not_saved", detail=exc) from exc
        return FeedbackRecord.from_dict(stored)

    def read_ratings(self) -> list[FeedbackRecord]:
        return [FeedbackRecord.from_dict(r) for r in self.read("ratings").records]


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def _idempotency_key(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput("bad_idempotency_key")
    return value


def default_replica() -> str:
    """host-pid, safe for a file name: one writer per process for replicas and Hub sync."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"
