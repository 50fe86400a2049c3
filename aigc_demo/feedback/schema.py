"""The records of every stream; first the rating: self-contained, versioned, so the JSONL file *is* the dataset.

One ``to_dict`` / ``from_dict`` pair; ``"schema": 1`` on every line; older schemas are
brought forward by named upgrade functions in ``UPGRADES``. Fields this version does
not know are kept in ``extra`` and written back unchanged, so a newer writer's data
survives a round trip through an older reader.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SCHEMA_VERSION = 1

RATINGS: tuple[str, ...] = ("up", "down")


def new_id() -> str:
    return uuid.uuid4().hex


def shown_output(output: Any) -> str:
    """What an admin view shows of an output: its text, or an image's file name (never the
    server's absolute path, which says nothing to a reader and tells an outsider the layout)."""
    if not isinstance(output, dict):
        return ""
    if output.get("text"):
        return str(output["text"])
    path = str(output.get("path") or "")
    return "🖼 " + path.replace("\\", "/").rsplit("/", 1)[-1] if path else ""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FeedbackRecord:
    """One rating of one output, with everything needed to learn from it."""

    tab: str
    output_id: str
    rating: str
    model: dict[str, Any]
    params: dict[str, Any]
    output: dict[str, Any]
    comment: str = ""
    reasons: list[str] = field(default_factory=list)
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    sources: list[dict[str, Any]] | None = None
    latency_ms: float | None = None
    item: int | None = None  # which image of a batch was rated (None: the whole output)
    session_id: str = ""
    variant: str | None = None
    app_version: str = ""
    idempotency_key: str | None = None  # the client's key for this click: a retry returns this record
    amends: str | None = None  # the id of the rating this one updates (a reason or comment added later)
    correction: str = ""  # a better answer the tester wrote ("" when none): training data
    id: str = field(default_factory=new_id)
    ts: str = field(default_factory=utc_now)
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        # Unknown fields go back at top level, as they came; known ones win on a clash.
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackRecord:
        data = upgrade(dict(data))
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)


# schema N -> N+1 functions, applied in order. Schema 1 is the first, so none yet;
# when a field changes meaning, add e.g. ``UPGRADES[1] = _v1_to_v2`` here.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    version = int(data.get("schema", 1))
    if version > SCHEMA_VERSION:
        # A newer writer: keep everything, read what we understand.
        return data
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version += 1
        data["schema"] = version
    return data


# -- the other streams -------------------------------------------------------------------
#
# Every line of every stream carries ``id``, ``ts`` and ``schema``. These records are
# written whole (``to_dict``) and read back as plain dicts by their readers, which accept
# the fields of older schemas (a schema-1 handoff has no ticket number).


@dataclass(kw_only=True)
class StreamRecord:
    id: str = field(default_factory=new_id)
    ts: str = field(default_factory=utc_now)
    schema: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class GeneratedOutput:
    """What a tab produced: kept in memory for rating, logged as a ``GenerationEvent``."""

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


@dataclass(kw_only=True)
class GenerationEvent(StreamRecord, GeneratedOutput):
    """``events``: one per output, rated or not (coverage, latency, rating after a restart); id = output_id."""

    type: Literal["generation"] = "generation"
    app_version: str = ""


@dataclass(kw_only=True)
class ArenaPairEvent(StreamRecord):
    """``events``: a blind battle's two sides (so a vote after a restart finds its pair); id = pair_id."""

    type: Literal["arena_pair"] = "arena_pair"
    pair_id: str
    kind: str
    prompt: str
    a: dict[str, Any]
    b: dict[str, Any]
    session_id: str = ""
    variant: str | None = None


@dataclass(kw_only=True)
class ArenaVote(StreamRecord):
    """``arena``: the one vote on a pair, with both sides' recipes and outputs."""

    type: Literal["arena_vote"] = "arena_vote"
    tab: Literal["arena"] = "arena"
    pair_id: str
    kind: str
    prompt: str
    choice: str
    winner: str | None
    reasons: list[str]
    comment: str
    a: dict[str, Any]
    b: dict[str, Any]
    session_id: str = ""
    variant: str | None = None
    app_version: str = ""


@dataclass(kw_only=True)
class HandoffRecord(StreamRecord):
    """``handoffs``: a conversation the bot passed to a person, with its ticket number."""

    schema: int = 2  # 2: ticket, lang, mood and summary
    ticket: str
    output_id: str
    session_id: str
    reason: str
    lang: str
    mood: str | None
    summary: str
    messages: list[dict[str, Any]]
    sources: list[dict[str, Any]]


@dataclass(kw_only=True)
class HandoffUpdate(StreamRecord):
    """``handoff_updates``: a ticket's new status (the latest update wins); append-only."""

    ticket: str
    # open: with the operators; resolved: closed by an operator; returned: handed back to the bot
    status: Literal["open", "resolved", "returned"]
    resolution: str = ""
    kb_entry: str = ""  # the KB entry the resolution was saved as, if any
    question: str = ""  # the customer's question the resolution answers (for the KB and training)


@dataclass(kw_only=True)
class HandoffMessage(StreamRecord):
    """``handoff_messages``: one line of a ticket's live thread, appended, never edited.

    ``role``: ``customer`` (typed after the handoff), ``operator`` (a reply the customer sees)
    or ``read`` (an operator opened the thread: no text; it ends the unread count)."""

    ticket: str
    role: Literal["customer", "operator", "read"]
    content: str = ""
    session_id: str = ""


@dataclass(kw_only=True)
class CsatRecord(StreamRecord):
    """``csat``: the customer's 1–5 score of a closed ticket, with an optional comment; one per ticket."""

    ticket: str
    csat: int
    comment: str = ""
    session_id: str = ""
    lang: str = ""


# -- what readers may rely on ----------------------------------------------------------------
#
# A line with a valid checksum can still have a shape no reader expects (written by hand, by
# another tool, or by an attacker with access to the files). Readers skip such a record —
# counted and shown by ``verify``, ``stats`` and Insights — instead of failing on it: one bad
# line must not take down support answers or the admin views. Fields that are present must
# have these types; the required ones must be present.

_TEXT, _MAP, _LIST, _OPT_TEXT, _OPT_LIST = (str,), (dict,), (list,), (str, type(None)), (list, type(None))
SHAPES: dict[str, tuple[tuple[str, ...], dict[str, tuple[type, ...]]]] = {
    "ratings": (
        ("tab", "output_id", "rating", "output"),
        {
            "tab": _TEXT,
            "output_id": _TEXT,
            "rating": _TEXT,
            "model": _MAP,
            "params": _MAP,
            "output": _MAP,
            "comment": _TEXT,
            "reasons": _LIST,
            "prompt": _OPT_TEXT,
            "messages": _OPT_LIST,
            "sources": _OPT_LIST,
            "session_id": _TEXT,
            "ts": _TEXT,
            "idempotency_key": _OPT_TEXT,
            "correction": _TEXT,
        },
    ),
    "events": (
        ("type",),
        {
            "type": _TEXT,
            "output_id": _TEXT,
            "pair_id": _TEXT,
            "tab": _TEXT,
            "model": _MAP,
            "params": _MAP,
            "output": _MAP,
            "messages": _OPT_LIST,
            "sources": _OPT_LIST,
            "a": _MAP,
            "b": _MAP,
            "ts": _TEXT,
            "session_id": _TEXT,
        },
    ),
    "arena": (
        ("pair_id", "choice"),
        {"pair_id": _TEXT, "choice": _TEXT, "a": _MAP, "b": _MAP, "reasons": _LIST, "comment": _TEXT, "ts": _TEXT},
    ),
    "handoffs": (
        ("messages",),
        {"ticket": _TEXT, "messages": _LIST, "sources": _LIST, "reason": _TEXT, "summary": _TEXT, "ts": _TEXT},
    ),
    "handoff_updates": (
        ("ticket", "status"),
        {"ticket": _TEXT, "status": _TEXT, "resolution": _TEXT, "question": _TEXT, "ts": _TEXT},
    ),
    "handoff_messages": (
        ("ticket", "role", "content"),
        {"ticket": _TEXT, "role": _TEXT, "content": _TEXT, "session_id": _TEXT, "ts": _TEXT},
    ),
    "csat": (("ticket", "csat"), {"ticket": _TEXT, "csat": (int,), "comment": _TEXT, "ts": _TEXT}),
}


def check_shape(stream: str, record: dict[str, Any]) -> str | None:
    """None when ``record`` has the shape readers of ``stream`` expect, else why not."""
    required, types = SHAPES.get(stream, ((), {}))
    for name in required:
        if name not in record:
            return f"missing {name}"
    for name, allowed in types.items():
        if name in record and not isinstance(record[name], allowed):
            return f"{name} is {type(record[name]).__name__}"
    for name in ("messages", "sources"):
        items = record.get(name) or []
        if not all(isinstance(m, dict) for m in items):
            return f"{name} holds a non-object"
    for message in record.get("messages") or []:
        if not (isinstance(message.get("role"), str) and isinstance(message.get("content"), str)):
            return "a message without text role and content"
    nested = _nested_text_problem(record)
    if nested is not None:
        return nested
    if not all(isinstance(reason, str) for reason in record.get("reasons") or []):
        return "reasons holds a non-text"
    return None


_NESTED_TEXT = {
    "output": ("text", "path", "finish_reason"),
    "model": ("id", "backend", "precision"),
    "sources": ("id", "title", "snippet", "url", "source"),
}


def _nested_text_problem(record: dict[str, Any]) -> str | None:
    """Why a field inside ``record``'s objects is not text where readers expect text, or None."""
    # Fields that readers (exports, tables, training data) take as text, inside the objects.
    for name, keys in _NESTED_TEXT.items():
        value = record.get(name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict):
                continue
            wrong = next((k for k in keys if item.get(k) is not None and not isinstance(item[k], str)), None)
            if wrong is not None:
                return f"{name}.{wrong} is {type(item[wrong]).__name__}"
    return None


def shape_check(stream: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda record: check_shape(stream, record)
