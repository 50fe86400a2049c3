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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError
from aigc_demo.feedback.schema import GeneratedOutput, utc_now
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.base import TextRequest
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.lang import contains_cjk, main_script
from aigc_demo.services.support import policy
from aigc_demo.services.support.analysis import normalize
from aigc_demo.services.support.handoffs import RESOLVED_KB_FILE, HandoffQueue
from aigc_demo.services.support.kb import KnowledgeBase, load_kb
from aigc_demo.services.support.knowledge import KnowledgeFiles
from aigc_demo.services.support.learning import SupportLearning
from aigc_demo.services.support.lexicon import default_lexicon
from aigc_demo.services.support.retrieval import Hit, HybridIndex, tokenize
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
# A web address as the autolinker reads one: ASCII URL characters, backticks excepted.
_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)


def _lang(text: str, history: list[dict[str, str]] | None = None) -> str:
    """zh or en: the message's script, else the conversation's, else Chinese (our users' first language)."""
    for candidate in [text, *(m["content"] for m in reversed(history or []) if m["role"] == "user")]:
        if contains_cjk(candidate) or _LETTER.search(candidate):
            return main_script(candidate)  # the script most of it is in, as the index reads it
    return "zh"


def md_escape(text: str) -> str:
    """A customer's words inside a Markdown answer stay words: no link, image or emphasis.
    A web address is shown whole, as code: the chat's autolinker would otherwise make a live
    link of it with an escape's backslash in it (``http://a.example\\)``)."""
    out, start = [], 0
    for found in _URL.finditer(text):
        url = _url_end(found.group(0))
        out += [_MD_SPECIAL.sub(r"\\\1", text[start : found.start()]), f"`{url}`"]
        start = found.start() + len(url)
    out.append(_MD_SPECIAL.sub(r"\\\1", text[start:]))
    return "".join(out)


def _url_end(url: str) -> str:
    """Where an address ends, as GitHub's autolinker decides: not at a closing punctuation mark,
    nor at a ")" it did not open ("(see http://a.example/x)")."""
    while url and (url[-1] in ".,;:!?'*" or (url[-1] == ")" and url.count(")") > url.count("("))):
        url = url[:-1]
    return url


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
        self._resolved_seen: tuple[int, int] | None = None  # the operators' answers file, as indexed

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
        self._resolved_seen = self._resolved_stamp()  # before reading: a later write is seen next time
        kb = load_kb(*dirs)
        for problem in kb.problems:
            log.warning("knowledge base: %s", problem)
        if not kb.entries:
            raise AigcError("kb_empty")
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

    def resolve_handoff(
        self, ticket: str, resolution: str = "", *, save_as_answer: bool = False, question: str = ""
    ) -> Any:
        """Resolve a ticket (an empty resolution: the operator's last reply); a resolution
        saved as an answer is searchable at once."""
        self.index()  # learning is set up with the first index
        resolved = self.handoffs.resolve(ticket, resolution, save_as_answer=save_as_answer, question=question)
        if save_as_answer:
            self._rebuild()
        return resolved

    def _resolved_stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.resolved_dir / RESOLVED_KB_FILE).stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def follow_kb(self) -> None:
        """Serve the answers operators saved on another replica of this data dir too: when the
        saved-answers file changed since the index was built, rebuild it (one stat per question;
        a rebuild embeds only the new entries)."""
        if self._index is not None and self._resolved_stamp() != self._resolved_seen:
            self._rebuild()

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

    def chat(
        self, message: object, history: Any = None, *, session_id: str = "", ticket: object = ""
    ) -> dict[str, Any]:
        """Answer one customer message, in four steps (as a diffusers pipeline reads).

        With the number of an open ``ticket`` the message goes to the operators instead (see
        :meth:`to_operator`); a closed ticket's customer is answered by the bot again.

        1. **validate** the message and the conversation, and settle what the rules read;
        2. **decide**: the first rule of :attr:`rules` with a decision wins (a refusal, another
           company's brand, a product the KB never mentions, a verified answer, the search);
        3. **phrase** the decision in the customer's language (a handoff's words, the mood);
        4. **record** the output, and open the ticket of a handoff.
        """
        if ticket:
            open_ticket = self.handoffs.customer(ticket)
            if open_ticket.status == "open":
                return self.to_operator(open_ticket.ticket, message, session_id=session_id)
        self.follow_kb()
        turn = self._validate_turn(message, history, session_id)  # 1
        started = time.perf_counter()
        decision = next(d for rule in self.rules for d in [rule(turn)] if d is not None)  # 2
        answer = self._phrase(turn, decision)  # 3
        return self._record(turn, decision, answer, (time.perf_counter() - started) * 1000)  # 4

    def to_operator(self, ticket: str, message: object, *, session_id: str = "") -> dict[str, Any]:
        """The customer's message joins the ticket's thread; the bot stays silent, except once,
        on the first message, to say a person will answer here."""
        text = self.validate(message)
        before = self.handoffs.customer(ticket)
        first = not any(m["role"] == "customer" for m in before.thread)
        after = self.handoffs.post(ticket, text, session_id=session_id, max_chars=self.settings.max_prompt_chars)
        lang = after.lang if after.lang in policy.WITH_OPERATOR else _lang(text)
        return {
            "output_id": "",
            "answer": policy.WITH_OPERATOR[lang] if first else "",
            "sources": [],
            "handoff": False,
            "handoff_reason": None,
            "ticket": after.ticket,
            "refused": False,
            "mood": None,
            "confidence": None,
            "answer_mode": "human",
            "status": "open",
            "stage": after.stage,
        }

    @property
    def rules(self) -> tuple[Callable[[Turn], Decision | None], ...]:
        """The decision rules in order; adding a rule is one entry here and one method."""
        return (
            self._rule_policy,
            self._rule_other_brand,
            self._rule_not_covered,
            self._rule_verified,
            self._rule_search,
        )

    # -- 1. validate -----------------------------------------------------------------------

    def _validate_turn(self, message: object, history: Any, session_id: str) -> Turn:
        text = self.validate(message)
        messages = normalize_history(history)
        variant = assign(self.settings.variant_table, "support", session_id)
        overrides = apply(variant, {}, ("answer_mode", "min_confidence"))
        return Turn(
            text=text,
            folded=normalize(text),  # rules see simplified Chinese and lower case
            messages=messages,
            lang=_lang(text, messages),
            threshold=float(overrides.get("min_confidence", self.settings.support_min_confidence)),
            answer_mode=overrides.get("answer_mode"),
            session_id=session_id,
            variant=variant.name if variant else None,
        )

    # -- 2. decide: each rule returns a Decision, or None to pass the turn on ---------------

    def _rule_policy(self, turn: Turn) -> Decision | None:
        """Injections, demands for a manager, thanks and greetings (policy.py)."""
        earlier = [normalize(m["content"]) for m in turn.messages if m["role"] == "user"]
        rule = policy.before_retrieval(turn.text, turn.folded, earlier, turn.lang)
        if rule is None:
            return None
        return Decision(reason=rule.handoff, answer=rule.answer, mode=rule.mode, refused=rule.refused)

    def _rule_other_brand(self, turn: Turn) -> Decision | None:
        """格力's warranty is not ours, however alike the question."""
        names = self.index().analyzer.foreign_names(turn.text)
        return Decision(reason="other_brand", names=list(names)) if names else None

    def _rule_not_covered(self, turn: Turn) -> Decision | None:
        """ "Do you sell spaceships?" is no pre-order question."""
        product = self.index().analyzer.unknown_product(turn.text)
        return Decision(reason="not_covered", names=[product]) if product else None

    def _rule_verified(self, turn: Turn) -> Decision | None:
        verified = self._verified_answer(turn.text, turn.messages)
        if verified is None:
            return None
        answer, sources, confidence = verified
        return Decision(answer=answer, sources=sources, confidence=confidence, mode="verified")

    def _rule_search(self, turn: Turn) -> Decision:
        """The knowledge base: part by part, or the best entry, or a scope reply, or a person."""
        found = self._search(turn.text, turn.messages)
        parts = self._search_parts(turn.text)
        confident = [f for f in parts if f.hits and f.confidence >= turn.threshold]
        if len({f.hits[0].entry.id for f in confident}) >= 2:
            answer, sources = self._answer_parts(parts, turn.threshold, turn.lang)
            return Decision(
                answer=answer, sources=sources, confidence=min(f.confidence for f in confident), mode="multi-part"
            )
        if confident and max(f.confidence for f in confident) > found.confidence:
            found = max(confident, key=lambda f: f.confidence)
        sources = [h.as_source(i) for i, h in enumerate(found.hits[:3], start=1)]
        if found.confidence < turn.threshold and (scope := self._out_of_scope(turn.text)) is not None:
            # Small talk or a general request: a polite word on what the bot does, no ticket.
            return Decision(
                answer=policy.SCOPE_REPLY[scope][turn.lang], mode=scope, refused=True, confidence=found.confidence
            )
        if found.confidence < turn.threshold:
            return Decision(reason="low_confidence", sources=sources, confidence=found.confidence)
        answer, mode = self._answer(turn.text, turn.messages, found.hits[:3], answer_mode=turn.answer_mode)
        # An extractive answer is entry [1] word for word: the runners-up are not its
        # sources. A generated one may draw on each close entry.
        sources = sources[:1] if mode.startswith("extractive") else _relevant(sources)
        return Decision(answer=answer, sources=sources, confidence=found.confidence, mode=mode)

    # -- 3. phrase -------------------------------------------------------------------------

    def _phrase(self, turn: Turn, decision: Decision) -> str:
        answer = decision.answer
        if decision.reason:
            joined = ("、" if turn.lang == "zh" else ", ").join(decision.names)
            answer = policy.HANDOFF[decision.reason][turn.lang].format(names=joined)
        elif not decision.refused and decision.mode != "llm" and main_script(answer) != turn.lang:
            answer = policy.OTHER_LANGUAGE[turn.lang] + answer  # a quoted entry in the other language
        feeling = policy.mood(turn.folded)
        if feeling and not decision.refused:
            answer = policy.ACKNOWLEDGE[feeling][turn.lang] + answer
        return answer

    # -- 4. record -------------------------------------------------------------------------

    def _record(self, turn: Turn, decision: Decision, answer: str, latency_ms: float) -> dict[str, Any]:
        handoff = bool(decision.reason)
        ticket = policy.new_ticket() if handoff else None
        feeling = policy.mood(turn.folded)
        conversation = [*turn.messages, {"role": "user", "content": turn.text}]
        model_info = self.registry.info("text") if decision.mode == "llm" else self.registry.info("embed")
        output = GeneratedOutput(
            tab="support",
            model=model_info,
            params={
                "answer_mode": decision.mode,
                "confidence": round(decision.confidence, 3),
                "handoff_reason": decision.reason or None,
                "mood": feeling,
                "ticket": ticket,
            },
            prompt=turn.text,
            messages=conversation,
            output={"text": answer, "handoff": handoff},
            sources=decision.sources,
            latency_ms=round(latency_ms, 1),
            session_id=turn.session_id,
            variant=turn.variant,
        )
        if handoff:
            assert ticket is not None
            saved = self.handoffs.open(output, decision.reason, ticket, turn.lang)
            answer += (policy.TICKET if saved else policy.TICKET_FAILED)[turn.lang].format(
                ticket=ticket, contact=self.settings.support_contact or policy.DEFAULT_CONTACT[turn.lang]
            )
            if not saved:
                ticket = None
                output.params["ticket"] = None
            output.output["text"] = answer
            if self.learning is not None and saved:
                self.learning.note_handoff(
                    {
                        "reason": decision.reason,
                        "output_id": output.output_id,
                        "ts": utc_now(),
                        "messages": conversation,
                        "sources": decision.sources,
                    }
                )
        output.messages = [*conversation, {"role": "assistant", "content": answer}]
        self.feedback.register(output)
        return {
            "output_id": output.output_id,
            "answer": answer,
            "sources": decision.sources,
            "handoff": handoff,
            "handoff_reason": decision.reason or None,
            "ticket": ticket,
            "refused": decision.refused,
            "mood": feeling,
            "confidence": round(decision.confidence, 3),
            "answer_mode": None if handoff else decision.mode,
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
class Turn:
    """One customer message as the rules read it (step 1's result)."""

    text: str
    folded: str  # simplified Chinese, lower case
    messages: list[dict[str, str]]
    lang: str
    threshold: float
    answer_mode: str | None = None
    session_id: str = ""
    variant: str | None = None


@dataclass
class Decision:
    """What a rule decided: a handoff (``reason`` set, phrased in step 3) or an answer."""

    reason: str = ""  # a key of policy.HANDOFF; "" when the bot answers
    answer: str = ""
    mode: str = "extractive"
    sources: list[dict[str, Any]] = field(default_factory=list)
    confidence: float = 0.0
    refused: bool = False  # a refusal or scope reply: no acknowledgement of the mood
    names: list[str] = field(default_factory=list)  # what the handoff message names


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
