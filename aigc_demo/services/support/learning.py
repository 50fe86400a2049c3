"""Closing the loop inside the support tab: verified answers and knowledge gaps.

Both are *derived from the ratings stream* rather than kept in a store of their own, so
the JSONL file stays the single source of truth and a later rating of the same output
(readers take the last) naturally changes its status:

* an answer whose latest rating is 👍 becomes a **verified answer** for its question: a
  later question that is the same or close (see :func:`similarity`) gets that answer
  first, marked ``verified`` in its sources — at once, and again after a restart;
* a 👎 on an answer that was served from a verified one revokes the verification;
* an answer whose latest rating is 👎 — with its question, sources and comment — is a
  **knowledge gap**, as is every handoff the FAQ could not answer (``GAP_REASONS``): the list the support lead reads
  to decide which FAQ entries to add or fix.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aigc_demo.services.lang import contains_cjk
from aigc_demo.services.support.policy import HANDOFF_REASONS
from aigc_demo.services.support.retrieval import tokenize

VERIFIED_MIN_SIMILARITY = 0.8
# Only a single answer from the knowledge base (or the model, checked against it) can be
# verified: not a refusal, a greeting reply, or a multi-part answer that quotes the question.
VERIFIABLE_MODES = {"extractive", "extractive-fallback", "llm", "verified", None}
# Handoffs that show what the FAQ lacks: nothing in it answered (low_confidence), or the
# customer asked about a product it never mentions (not_covered: "Do you sell drones?").
GAP_REASONS = frozenset(key for key, reason in HANDOFF_REASONS.items() if reason.knowledge_gap)


@dataclass
class Verified:
    output_id: str
    question: str
    answer: str
    sources: list[dict[str, Any]]
    ts: str
    terms: set[str] = field(default_factory=set)
    vector: np.ndarray | None = None


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def similarity(
    question: str, terms: set[str], vector: np.ndarray | None, candidate: Verified, *, use_cosine: bool = True
) -> float:
    """Same-or-close question score in 0..1.

    Term overlap (Jaccard over words and CJK n-grams) works in every language; cosine
    similarity only where its scale means "the same question": for an English-only
    embedder on non-CJK text (it rates any two Chinese sentences as fairly similar), never
    for E5-style embedders, which put any two questions above 0.8.
    """
    score = jaccard(terms, candidate.terms)
    if (
        use_cosine
        and vector is not None
        and candidate.vector is not None
        and not contains_cjk(question + candidate.question)
    ):
        score = max(score, float(vector @ candidate.vector))
    return score


class SupportLearning:
    """Verified answers and knowledge gaps, rebuilt from ratings and kept current as new ones are appended."""

    def __init__(self, embedder: Any | None) -> None:
        self.embedder = embedder
        self._verified: dict[str, Verified] = {}
        self._gaps: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- building ------------------------------------------------------------------------

    def load(self, ratings: list[dict[str, Any]], handoffs: list[dict[str, Any]]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for record in ratings:  # in time order: the last rating of an output wins
            if record.get("tab") == "support" and record.get("output_id"):
                latest[record["output_id"]] = record
        for record in latest.values():
            self.apply(record, embed=False)
        for handoff in handoffs:
            if handoff.get("reason") in GAP_REASONS:
                self._add_gap_from_handoff(handoff)
        self._embed_missing()

    def apply(self, record: dict[str, Any], *, embed: bool = True) -> None:
        """Update from one rating record (a dict as stored)."""
        if record.get("tab") != "support":
            return
        output = record.get("output") or {}
        question = (record.get("prompt") or "").strip()
        oid = record.get("output_id", "")
        with self._lock:
            self._verified.pop(oid, None)
            self._gaps.pop(oid, None)
            mode = (record.get("params") or {}).get("answer_mode")
            if (
                record.get("rating") == "up"
                and not output.get("handoff")
                and question
                and output.get("text")
                and mode in VERIFIABLE_MODES
            ):
                self._verified[oid] = Verified(
                    output_id=oid,
                    question=question,
                    answer=output["text"],
                    sources=[s for s in record.get("sources") or [] if not s.get("verified")] or [],
                    ts=record.get("ts", ""),
                    terms=set(tokenize(question)),
                )
            elif record.get("rating") == "down":
                # A downvote of an answer served *from* a verified one revokes that one too.
                for source in record.get("sources") or []:
                    if source.get("verified_from"):
                        self._verified.pop(source["verified_from"], None)
                self._gaps[oid] = {
                    "ts": record.get("ts", ""),
                    "kind": "downvoted",
                    "question": question,
                    "answer": output.get("text", ""),
                    "comment": record.get("comment", ""),
                    "reasons": record.get("reasons", []),
                    "sources": [s.get("id") for s in record.get("sources") or []],
                    "output_id": oid,
                }
        if embed:
            self._embed_missing()

    def _add_gap_from_handoff(self, handoff: dict[str, Any]) -> None:
        messages = handoff.get("messages") or []
        question = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        oid = handoff.get("output_id", "")
        with self._lock:
            self._gaps.setdefault(
                oid,
                {
                    "ts": handoff.get("ts", ""),
                    "kind": "handoff: not in the knowledge base",
                    "question": question,
                    "answer": "",
                    "comment": "",
                    "reasons": [],
                    "sources": [s.get("id") for s in handoff.get("sources") or []],
                    "output_id": oid,
                },
            )

    def note_handoff(self, handoff: dict[str, Any]) -> None:
        if handoff.get("reason") in GAP_REASONS:
            self._add_gap_from_handoff(handoff)

    def _embed_missing(self) -> None:
        if self.embedder is None or self.embedder.multilingual:
            return  # match() does not use the cosine of a multilingual embedder
        with self._lock:
            missing = [v for v in self._verified.values() if v.vector is None]
        if missing:
            vectors = self.embedder.embed([v.question for v in missing])
            with self._lock:
                for v, vec in zip(missing, vectors, strict=True):
                    v.vector = vec

    # -- using ---------------------------------------------------------------------------

    def match(self, question: str) -> tuple[Verified, float] | None:
        """The verified answer for the same or a close question, if any."""
        with self._lock:
            candidates = list(self._verified.values())
        if not candidates:
            return None
        terms = set(tokenize(question))
        use_cosine = self.embedder is not None and not self.embedder.multilingual
        vector = self.embedder.embed([question])[0] if use_cosine and self.embedder is not None else None

        def score_of(c: Verified) -> float:
            return similarity(question, terms, vector, c, use_cosine=use_cosine)

        best = max(candidates, key=lambda c: (score_of(c), c.ts))
        score = score_of(best)
        return (best, score) if score >= VERIFIED_MIN_SIMILARITY else None

    @property
    def verified_count(self) -> int:
        return len(self._verified)

    def knowledge_gaps(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._gaps.values(), key=lambda g: g["ts"], reverse=True)
