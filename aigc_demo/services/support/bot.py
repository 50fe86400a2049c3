"""The support conversation: rules, retrieval, an answer with citations or a handoff with a ticket.

The module map: policy.py (rules before retrieval, the bot's own phrases), analysis.py and
retrieval.py (search and confidence), handoffs.py (tickets and the operators' queue),
knowledge.py (the KB's files and uploads), learning.py (ratings and resolutions fed back).

Answer modes:

* ``extractive`` — reply with the best entry's own answer, cited. Never invents a
  policy; the offline default, because a 135M model paraphrasing a refund policy
  changes numbers and cannot read Chinese.
* ``llm`` — the text model answers from the numbered entries; the answer is then
  checked against them (every number it states must appear in a source, and most of
  its content words must too). An unsupported answer is replaced by the extractive one.

The conversation: a follow-up ("多少钱" after a question about installation) is searched
with the previous question as context when that is more confident; a message with several
questions is answered part by part, each with its citation; an angry or anxious customer is
acknowledged first; a question about another company's brand goes to a person.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError
from aigc_demo.feedback.schema import GeneratedOutput, utc_now
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.base import TextRequest
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.support import policy
from aigc_demo.services.support.analysis import normalize
from aigc_demo.services.support.handoffs import HandoffQueue
from aigc_demo.services.support.kb import KnowledgeBase, load_kb
from aigc_demo.services.support.knowledge import KnowledgeFiles
from aigc_demo.services.support.learning import SupportLearning
from aigc_demo.services.support.lexicon import default_lexicon
from aigc_demo.services.support.retrieval import Hit, HybridIndex, contains_cjk, tokenize
from aigc_demo.services.support.scope import ScopeGuard
from aigc_demo.services.validation import clean_history, clean_text
from aigc_demo.variants import apply, assign

log = logging.getLogger(__name__)

MAX_HISTORY_MESSAGES = 20
PRELOAD_PATIENCE = 30.0  # seconds a background start-up stage waits for a quiet server
MAX_HISTORY_ITEM_CHARS = 8000  # an answer with its sources fits; a pasted megabyte does not
# A message whose own words weigh less than two full words ("how much?", "多少钱")
# leans on the conversation for its topic.
ELLIPTICAL_WEIGHT = 2.0
SCOPE_GUARD = True  # bench/support_eval.py --ablate scope measures what it is worth
_LETTER = re.compile(r"[A-Za-z]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()<>!#|~])")


def _lang(text: str, history: list[dict[str, str]] | None = None) -> str:
    """zh or en: the message's script, else the conversation's, else Chinese (our users' first language)."""
    for candidate in [text, *(m["content"] for m in reversed(history or []) if m["role"] == "user")]:
        if contains_cjk(candidate):
            return "zh"
        if _LETTER.search(candidate):
            return "en"
    return "zh"


def md_escape(text: str) -> str:
    """A customer's words inside a Markdown answer stay words: no link, image or emphasis."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def normalize_history(history: Any) -> list[dict[str, str]]:
    """Accept Gradio messages ([{role, content}]) or legacy [user, bot] pairs (bounded)."""
    return clean_history(history, max_messages=MAX_HISTORY_MESSAGES, max_item_chars=MAX_HISTORY_ITEM_CHARS)


class SupportService:
    def __init__(self, registry: ModelRegistry, feedback: FeedbackService, settings: Settings) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings
        self._index: HybridIndex | None = None
        self._scope = ScopeGuard()
        self.learning: SupportLearning | None = None
        self._lock = threading.Lock()
        self._rebuild_lock = threading.Lock()
        self.knowledge = KnowledgeFiles(settings)
        self.resolved_dir = self.knowledge.resolved_dir
        self.handoffs = HandoffQueue(feedback, self.resolved_dir)
        self._ratings_tail = feedback.tail("ratings")

    @property
    def is_ready(self) -> bool:
        """Is the index built (so the next answer does not wait for the embedder)?"""
        return self._index is not None

    def validate(self, message: object) -> str:
        return clean_text(message, name="message", max_chars=self.settings.max_prompt_chars)

    @property
    def kb(self) -> KnowledgeBase:
        return self.index().kb

    def index(self) -> HybridIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    embedder = self.registry.get("embed")
                    learning = SupportLearning(embedder)
                    with self._ratings_tail.lock:
                        ratings = [record for *_, record in self._ratings_tail.poll()]
                    learning.load(ratings, self.feedback.read("handoffs").records)
                    self.learning = learning
                    self._index = self._build_index(self.kb_dirs())
        return self._index

    def preload(self, ready: Callable[[], bool] | None = None) -> None:
        """Build the index in the background, so the first customer does not wait for the
        embedder, the dictionary and the KB's vectors (seconds; more on a first start that
        has no prepared cache, as on a fresh Space). A failure is logged; the first question
        tries again and shows the error.

        ``ready()``: may the next stage start? (The app: the page is served and no answer is
        being written.) It is asked before each stage (dictionary, embedder, index), so the
        work never delays the page or competes with a generation; after PRELOAD_PATIENCE
        seconds of a busy server a stage starts anyway. A question asked meanwhile builds
        the index itself.
        """

        def when_ready() -> None:
            deadline = time.monotonic() + PRELOAD_PATIENCE
            while ready is not None and not ready() and time.monotonic() < deadline and self._index is None:
                time.sleep(0.05)

        def build() -> None:
            try:
                when_ready()
                default_lexicon(self.settings.cache_dir)
                when_ready()
                self.registry.get("embed")
                when_ready()
                self.index()
            except Exception as exc:  # noqa: BLE001 - a background warm-up must not kill the thread silently
                log.warning("support index not preloaded: %s", exc)

        threading.Thread(target=build, name="preload-support", daemon=True).start()

    def _build_index(self, dirs: list[Path]) -> HybridIndex:
        kb = load_kb(*dirs)
        for problem in kb.problems:
            log.warning("knowledge base: %s", problem)
        if not kb.entries:
            raise AigcError(
                "The support knowledge base is empty. Set AIGC_SUPPORT_KB to a folder with "
                "CSV / JSONL (question, answer) or Markdown files, or upload one in the Support tab (admin).",
                zh="客服知识库为空。请把 AIGC_SUPPORT_KB 设为包含 CSV / JSONL（question、answer）"
                "或 Markdown 文件的目录，或在客服页（管理员）上传。",
            )
        return HybridIndex(kb, self.registry.get("embed"), cache_dir=self.settings.cache_dir)

    # -- knowledge base management (admin): files in knowledge.py, the index here -------------

    def kb_dirs(self) -> list[Path]:
        return self.knowledge.dirs()

    def install_files(self, files: list[Path], *, replace: bool) -> KnowledgeBase:
        """Install uploaded knowledge files (checked first: see knowledge.py) and rebuild the index."""
        self.knowledge.install(files, replace=replace)
        return self._rebuild().kb

    def reset_uploads(self) -> KnowledgeBase:
        """Forget uploaded files and go back to the bundled / configured KB."""
        self.knowledge.reset()
        return self._rebuild().kb

    def resolve_handoff(self, ticket: str, resolution: str, *, save_as_answer: bool = False, question: str = "") -> Any:
        """Resolve a ticket; a resolution saved as an answer is searchable at once."""
        self.index()  # learning is set up with the first index
        resolved = self.handoffs.resolve(ticket, resolution, save_as_answer=save_as_answer, question=question)
        if save_as_answer:
            self._rebuild()
        return resolved

    def _rebuild(self) -> HybridIndex:
        """Rebuild the index from the current files; rebuilds run one at a time, so the last
        files on disk are always the ones served. Chats in flight finish on the old index."""
        self.index()
        with self._rebuild_lock:
            new_index = self._build_index(self.kb_dirs())
            with self._lock:
                self._index = new_index
        return new_index

    # -- learning from ratings -------------------------------------------------------------

    def follow_ratings(self) -> None:
        """Learn from the ratings appended since the last look — this process's and any other
        replica's on the same data dir — so a 👍 on one replica is a verified answer on all."""
        if self.learning is None:
            return
        with self._ratings_tail.lock:
            new = [record for *_, record in self._ratings_tail.poll()]
        for record in new:
            self.learning.apply(record)

    def knowledge_gaps(self) -> list[dict[str, Any]]:
        self.index()
        self.follow_ratings()
        assert self.learning is not None
        return self.learning.knowledge_gaps()

    def retrieve(self, message: str, history: list[dict[str, str]], *, top_k: int = 3) -> tuple[list[Hit], float, str]:
        """Hits, confidence and the text searched (the message, with the previous question if that won)."""
        found = self._search(message, history, top_k=top_k)
        return found.hits, found.confidence, f"{found.context} {found.query}".strip()

    def _search(self, message: str, history: list[dict[str, str]], *, top_k: int = 3) -> Found:
        """The message alone and, after an earlier question, with it as context: the more confident wins.

        No marker words needed: "多少钱" after a question about installation is vague alone and
        specific in context; a new full question is more confident alone.
        """
        index = self.index()
        previous = [m["content"] for m in history if m["role"] == "user"]
        context = previous[-1][-300:] if previous else ""
        vectors = index.embed_queries([message] + ([f"{context} {message}"] if context else []))
        hits, confidence = index.search(message, top_k=top_k, vector=vectors[0])
        found = Found(message, hits, confidence)
        if context and hits:
            hits2, confidence2 = index.search(message, top_k=top_k, context=context, vector=vectors[1])
            # Context may steer a vague message ("how much?"); a message with words of its own
            # keeps the context only if its top entry covers those words as well (a new topic
            # such as "How fast does a spaceship fly?" is not glued to the previous question).
            alone, joined = hits[0].signals, hits2[0].signals
            vague = alone.own_weight < ELLIPTICAL_WEIGHT
            # An entry that covers none of the message's own words is no answer to it, context or not.
            covers = joined.own_coverage > 0 and joined.own_coverage >= alone.own_coverage
            if confidence2 > confidence and (vague or covers):
                found = Found(message, hits2, confidence2, context)
        return found

    def _out_of_scope(self, message: str) -> str | None:
        if not SCOPE_GUARD:
            return None
        index = self.index()
        vector = index.embed_queries([message])[0]
        return self._scope.kind(vector, index.vectors, index.embedder)

    def _search_parts(self, message: str) -> list[Found]:
        """Each question of a multi-part message, searched on its own."""
        parts = policy.split_parts(message)
        if len(parts) < 2:
            return []
        index = self.index()
        vectors = index.embed_queries(parts)
        return [Found(part, *index.search(part, vector=vector)) for part, vector in zip(parts, vectors, strict=True)]

    def chat(self, message: object, history: Any = None, *, session_id: str = "") -> dict[str, Any]:
        text = self.validate(message)
        messages = normalize_history(history)
        variant = assign(self.settings.variant_table, "support", session_id)
        overrides = apply(variant, {}, ("answer_mode", "min_confidence"))
        threshold = float(overrides.get("min_confidence", self.settings.support_min_confidence))
        lang = _lang(text, messages)
        folded = normalize(text)  # rules see simplified Chinese and lower case
        started = time.perf_counter()
        sources: list[dict[str, Any]] = []
        confidence = 0.0
        reason = ""
        names: list[str] = []
        refused = False
        mode = "extractive"
        feeling = policy.mood(folded)
        earlier = [normalize(m["content"]) for m in messages if m["role"] == "user"]
        rule = policy.before_retrieval(text, folded, earlier, lang)
        if rule is not None:
            reason, answer, mode, refused = rule.handoff, rule.answer, rule.mode, rule.refused
        elif names := self.index().analyzer.foreign_names(text):
            reason = "other_brand"  # 格力's warranty is not ours, however alike the question
        elif product := self.index().analyzer.unknown_product(text):
            reason, names = "not_covered", [product]  # "Do you sell spaceships?" is no pre-order question
        elif (verified := self._verified_answer(text, messages)) is not None:
            answer, sources, confidence = verified
            mode = "verified"
        else:
            found = self._search(text, messages)
            parts = self._search_parts(text)
            confident = [f for f in parts if f.hits and f.confidence >= threshold]
            if len({f.hits[0].entry.id for f in confident}) >= 2:
                answer, sources = self._answer_parts(parts, threshold, lang)
                confidence, mode = min(f.confidence for f in confident), "multi-part"
            else:
                if confident and max(f.confidence for f in confident) > found.confidence:
                    found = max(confident, key=lambda f: f.confidence)
                confidence = found.confidence
                sources = [h.as_source(i) for i, h in enumerate(found.hits[:3], start=1)]
                if confidence < threshold and (scope := self._out_of_scope(text)) is not None:
                    # Small talk or a general request: a polite word on what the bot does, no ticket.
                    answer, mode, refused, sources = policy.SCOPE_REPLY[scope][lang], scope, True, []
                elif confidence < threshold:
                    reason = "low_confidence"
                else:
                    answer, mode = self._answer(
                        text, messages, found.hits[:3], answer_mode=overrides.get("answer_mode")
                    )
                    # An extractive answer is entry [1] word for word: the runners-up are not its
                    # sources. A generated one may draw on each close entry.
                    sources = sources[:1] if mode.startswith("extractive") else _relevant(sources)
        handoff = bool(reason)
        ticket = policy.new_ticket() if handoff else None
        if handoff:
            answer = policy.HANDOFF[reason][lang].format(names="、".join(names) if lang == "zh" else ", ".join(names))
        if feeling and not refused:
            answer = policy.ACKNOWLEDGE[feeling][lang] + answer
        latency_ms = (time.perf_counter() - started) * 1000
        conversation = [*messages, {"role": "user", "content": text}]
        model_info = self.registry.info("text") if mode == "llm" else self.registry.info("embed")
        output = GeneratedOutput(
            tab="support",
            model=model_info,
            params={
                "answer_mode": mode,
                "confidence": round(confidence, 3),
                "handoff_reason": reason or None,
                "mood": feeling,
                "ticket": ticket,
            },
            prompt=text,
            messages=conversation,
            output={"text": answer, "handoff": handoff},
            sources=sources,
            latency_ms=round(latency_ms, 1),
            session_id=session_id,
            variant=variant.name if variant else None,
        )
        if handoff:
            assert ticket is not None
            saved = self.handoffs.open(output, reason, ticket, lang)
            answer += (policy.TICKET if saved else policy.TICKET_FAILED)[lang].format(
                ticket=ticket, contact=self.settings.support_contact or policy.DEFAULT_CONTACT[lang]
            )
            if not saved:
                ticket = None
                output.params["ticket"] = None
            output.output["text"] = answer
            if self.learning is not None and saved:
                self.learning.note_handoff(
                    {
                        "reason": reason,
                        "output_id": output.output_id,
                        "ts": utc_now(),
                        "messages": conversation,
                        "sources": sources,
                    }
                )
        output.messages = [*conversation, {"role": "assistant", "content": answer}]
        self.feedback.register(output)
        return {
            "output_id": output.output_id,
            "answer": answer,
            "sources": sources,
            "handoff": handoff,
            "handoff_reason": reason or None,
            "ticket": ticket,
            "refused": refused,
            "mood": feeling,
            "confidence": round(confidence, 3),
            "answer_mode": None if handoff else mode,
        }

    def _answer_parts(self, parts: list[Found], threshold: float, lang: str) -> tuple[str, list[dict[str, Any]]]:
        """One answer per question of the message, each citing its own entry."""
        lines: list[str] = []
        sources: list[dict[str, Any]] = []
        cited: dict[str, int] = {}
        for number, found in enumerate(parts, start=1):
            if not found.hits or found.confidence < threshold:
                lines.append(f"{number}. " + policy.UNANSWERED_PART[lang].format(part=md_escape(found.query[:60])))
                continue
            entry = found.hits[0].entry
            if entry.id not in cited:
                cited[entry.id] = len(sources) + 1
                sources.append(found.hits[0].as_source(cited[entry.id]))
            lines.append(f"{number}. **{md_escape(found.query)}** {entry.answer} [{cited[entry.id]}]")
        return "\n".join(lines), sources

    def _verified_answer(
        self, text: str, history: list[dict[str, str]]
    ) -> tuple[str, list[dict[str, Any]], float] | None:
        """An upvoted earlier answer to the same or a close question, cited as verified."""
        self.index()
        if self.learning is None:
            return None
        if history and sum(u.weight for u in self.index().analyzer.units(text)) < ELLIPTICAL_WEIGHT:
            return None  # a vague follow-up ("how long?") means the conversation's topic, not a stored question
        self.follow_ratings()
        found = self.learning.match(text)
        if found is None:
            return None
        verified, score = found
        first = dict(verified.sources[0]) if verified.sources else {"id": f"verified:{verified.output_id}", "rank": 1}
        first.update(
            rank=1,
            verified=True,
            verified_from=verified.output_id,
            verified_question=verified.question,
            score=round(score, 4),
        )
        rest = [dict(s) for s in verified.sources[1:]]
        return verified.answer, [first, *rest], score

    def _answer(
        self, question: str, history: list[dict[str, str]], hits: list[Hit], *, answer_mode: str | None = None
    ) -> tuple[str, str]:
        extractive = f"{hits[0].entry.answer} [1]"
        if (answer_mode or self.settings.resolved_support_answer_mode) == "extractive":
            return extractive, "extractive"
        try:
            generated = self._generate(question, history, hits)
        except AigcError as exc:
            log.warning("LLM answer failed, falling back to extractive: %s", exc.message)
            return extractive, "extractive"
        if is_supported(generated, [h.entry.answer for h in hits]):
            return generated, "llm"
        return extractive, "extractive-fallback"

    def _generate(self, question: str, history: list[dict[str, str]], hits: list[Hit]) -> str:
        model = self.registry.get("text")
        context = "\n".join(f"[{i}] {h.entry.question}\n{h.entry.answer}" for i, h in enumerate(hits, start=1))
        system = (
            "You are a customer-service assistant. Answer ONLY from the numbered sources below, in the "
            "customer's language, in at most 3 sentences, and cite sources like [1]. If the sources do not "
            "answer the question, say you will transfer the customer to a human.\n\nSources:\n" + context
        )
        request = TextRequest(
            messages=[{"role": "system", "content": system}, *history[-6:], {"role": "user", "content": question}],
            max_new_tokens=160,
            temperature=0.0,
        )
        return "".join(model.stream(request)).strip()


@dataclass
class Found:
    """One search: the text searched, its hits and confidence, and the context used."""

    query: str
    hits: list[Hit]
    confidence: float
    context: str = ""


def _relevant(sources: list[dict[str, Any]], *, keep: float = 0.6) -> list[dict[str, Any]]:
    """The cited entry and those close to it; a distant runner-up is noise under an answer."""
    if not sources:
        return sources
    top = sources[0]["score"] or 1.0
    return [s for s in sources if s["rank"] == 1 or s["score"] >= keep * top]


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def is_supported(answer: str, sources: list[str], *, min_overlap: float = 0.6) -> bool:
    """Is every number in the answer in a source, and most content words too?"""
    answer = re.sub(r"\[\d+\]", " ", answer)  # citation marks are not claims
    if not answer.strip():
        return False
    source_text = " ".join(sources)
    if any(n not in source_text for n in _NUMBER.findall(answer)):
        return False
    terms = {t for t in tokenize(answer) if len(t) > 1}
    if not terms:
        return False
    source_terms = set(tokenize(source_text))
    return len(terms & source_terms) / len(terms) >= min_overlap
