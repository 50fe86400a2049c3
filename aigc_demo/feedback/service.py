"""Rate what the app generated.

Every finished generation is registered here as a :class:`GeneratedOutput` (the full
context a rating needs) under a fresh ``output_id``; :meth:`FeedbackService.rate`
turns an output id plus 👍/👎 into a self-contained :class:`FeedbackRecord` and appends
it durably. Outputs are kept in a bounded in-memory log: a rating normally follows its
output within minutes, and the record copies everything it needs, so the JSONL file
stays the single source of truth.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_demo import __version__
from aigc_demo.errors import InvalidInput, NotFound
from aigc_demo.feedback.schema import RATINGS, FeedbackRecord, new_id
from aigc_demo.feedback.store import JsonlStore

MAX_COMMENT_CHARS = 2000
REASONS = ("inaccurate", "off-topic", "unsafe", "low quality", "too slow", "great")


@dataclass
class GeneratedOutput:
    tab: str
    model: dict[str, Any]
    params: dict[str, Any]
    output: dict[str, Any]
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    sources: list[dict[str, Any]] | None = None
    latency_ms: float | None = None
    session_id: str = ""
    variant: str | None = None
    output_id: str = field(default_factory=new_id)


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
    """Registers outputs and stores ratings of them."""

    def __init__(self, data_dir: Path, *, outputs: OutputLog | None = None) -> None:
        self.ratings = JsonlStore(Path(data_dir) / "feedback" / "ratings.jsonl")
        self.outputs = outputs or OutputLog()

    def register(self, output: GeneratedOutput) -> str:
        self.outputs.add(output)
        return output.output_id

    def rate(
        self,
        output_id: str,
        rating: str,
        comment: str = "",
        *,
        reasons: list[str] | None = None,
        session_id: str = "",
    ) -> FeedbackRecord:
        """Append a rating; raise InvalidInput / NotFound / StorageError with a clear message."""
        rating = (rating or "").strip().lower()
        if rating not in RATINGS:
            raise InvalidInput(f"rating must be 'up' or 'down', got {rating[:20]!r}")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInput(f"comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}")
        reasons = [r for r in (reasons or []) if r in REASONS]
        output = self.outputs.get((output_id or "").strip())
        if output is None:
            raise NotFound(
                f"Unknown output_id {str(output_id)[:64]!r}: rate an output this app generated "
                "(the id is returned by /generate_text, /generate_image and /support_chat)."
            )
        record = FeedbackRecord(
            tab=output.tab,
            output_id=output.output_id,
            rating=rating,
            comment=comment,
            reasons=reasons,
            model=output.model,
            params=output.params,
            prompt=output.prompt,
            messages=output.messages,
            output=output.output,
            sources=output.sources,
            latency_ms=output.latency_ms,
            session_id=session_id or output.session_id,
            variant=output.variant,
            app_version=__version__,
        )
        self.ratings.append(record.to_dict())
        return record

    def read_ratings(self) -> list[FeedbackRecord]:
        return [FeedbackRecord.from_dict(r) for r in self.ratings.read().records]
