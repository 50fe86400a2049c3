"""The support bot: retrieve, answer with citations or hand off, register the output.

Answer modes:

* ``extractive`` — reply with the best entry's own answer, cited. Never invents a
  policy; the offline default, because a 135M model paraphrasing a refund policy
  changes numbers and cannot read Chinese.
* ``llm`` — the text model answers from the numbered entries; the answer is then
  checked against them (every number it states must appear in a source, and most of
  its content words must too). An unsupported answer is replaced by the extractive one.

Handoff to a human happens on an explicit request ("human", "人工"...), on repeated
frustration, or when retrieval confidence is below ``support_min_confidence``. Each
handoff is appended to the ``handoffs`` stream (``DATA_DIR/feedback/handoffs.jsonl``) with the
conversation, so a human can pick it up.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.feedback.schema import new_id, utc_now
from aigc_demo.feedback.service import FeedbackService, GeneratedOutput
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.models.base import TextRequest
from aigc_demo.services.support.kb import SUPPORTED, KnowledgeBase, knowledge_files, load_kb
from aigc_demo.services.support.learning import SupportLearning
from aigc_demo.services.support.retrieval import Hit, HybridIndex, contains_cjk, tokenize
from aigc_demo.services.validation import clean_text
from aigc_demo.services.variants import apply, assign

log = logging.getLogger(__name__)

MAX_HISTORY_MESSAGES = 20
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
REPLACE_MARKER = ".replace"
HUMAN_REQUEST = re.compile(
    r"\b(human|agent|real person|representative|operator|someone real|live chat)\b|人工|真人|客服人员|转接",
    re.IGNORECASE,
)
FRUSTRATION = re.compile(
    r"\b(useless|stupid|terrible|ridiculous|angry|furious|worst|scam|hate|not helpful|doesn'?t help)\b"
    r"|没用|垃圾|生气|气死|投诉|太差|什么破|不满意|骗",
    re.IGNORECASE,
)

FOLLOW_UP = re.compile(
    r"^\s*(and|also|what about|how about|then|so|but)\b|\b(it|that|this|they|them|those|there)\b"
    r"|^\s*(那|还有|那么|另外|然后)|它|这个|那个",
    re.IGNORECASE,
)


def is_follow_up(message: str) -> bool:
    """Does the message lean on the previous turn ("and…", "what about…", a pronoun)?

    Only explicit markers count: a short new question ("Do you sell spaceships?") is a new
    topic, and joining it to the previous question would answer the old one again.
    """
    return bool(FOLLOW_UP.search(message))


GREETING = {
    "en": "Hi! I'm the Lumen Store assistant. Ask me about shipping, returns, refunds, payment, "
    "your account or warranty — or type “human” to reach a person.",
    "zh": "您好！我是流明商城智能客服，可以解答配送、退换货、退款、支付、账户和保修等问题；输入“人工”可转接人工客服。",
}
HANDOFF_MESSAGE = {
    "en": "I'm not sure I can answer that correctly, so let me transfer you to a human colleague. "
    "They will see this conversation and reply shortly.",
    "zh": "这个问题我不确定能准确回答，我为您转接人工客服，同事会看到本次对话并尽快回复您。",
}
HANDOFF_REQUESTED = {
    "en": "Of course — I'm transferring you to a human colleague now. They will see this conversation.",
    "zh": "好的，正在为您转接人工客服，客服同事会看到本次对话。",
}


def _lang(text: str) -> str:
    return "zh" if contains_cjk(text) else "en"


def normalize_history(history: Any) -> list[dict[str, str]]:
    """Accept Gradio messages ([{role, content}]) or legacy [user, bot] pairs."""
    messages: list[dict[str, str]] = []
    for item in history or []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = item.get("content")
            if isinstance(content, list):  # Gradio 6 may send [{"type": "text", "text": ...}]
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            messages.append({"role": item["role"], "content": str(content or "")})
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            user, bot = item
            if user:
                messages.append({"role": "user", "content": str(user)})
            if bot:
                messages.append({"role": "assistant", "content": str(bot)})
    return messages[-MAX_HISTORY_MESSAGES:]


class SupportService:
    def __init__(self, registry: ModelRegistry, feedback: FeedbackService, settings: Settings) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings
        self._index: HybridIndex | None = None
        self.learning: SupportLearning | None = None
        self._lock = threading.Lock()
        self.uploads_dir = Path(settings.data_dir) / "kb"
        feedback.on_rating(self._on_rating)

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
                    learning.load(self.feedback.read("ratings").records, self.feedback.read("handoffs").records)
                    self.learning = learning
                    self._index = self._build_index(self.kb_dirs())
        return self._index

    def _build_index(self, dirs: list[Path]) -> HybridIndex:
        kb = load_kb(*dirs)
        for problem in kb.problems:
            log.warning("knowledge base: %s", problem)
        if not kb.entries:
            raise AigcError(
                "The support knowledge base is empty. Set AIGC_SUPPORT_KB to a folder with "
                "CSV / JSONL (question, answer) or Markdown files, or upload one in the Support tab (admin).",
                zh="客服知识库为空。请把 AIGC_SUPPORT_KB 设为包含 CSV / JSONL（question、answer）或 Markdown 文件的目录，"
                "或在客服页（管理员）上传。",
            )
        return HybridIndex(kb, self.registry.get("embed"), cache_dir=self.settings.cache_dir)

    # -- knowledge base management (admin) ---------------------------------------------------

    def kb_dirs(self) -> list[Path]:
        """The bundled / configured KB, plus uploads — or uploads alone after a replace."""
        uploads = knowledge_files(self.uploads_dir) if self.uploads_dir.is_dir() else []
        replace = (self.uploads_dir / REPLACE_MARKER).exists()
        if uploads and replace:
            return [self.uploads_dir]
        return [Path(self.settings.support_kb)] + ([self.uploads_dir] if uploads else [])

    def install_files(self, files: list[Path], *, replace: bool) -> KnowledgeBase:
        """Validate uploaded knowledge files, install them and rebuild the index.

        Files that are not CSV / JSONL / Markdown / TXT or larger than 5 MB are refused; the
        returned KB lists every problem (file, line). Nothing changes when no entry loads.
        """
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix="kb-upload-", dir=self.settings.data_dir))
        try:
            for src in files:
                src = Path(src)
                name = re.sub(r"[^\w.\-]+", "_", src.name)[:100]  # never trust a client's path
                if src.suffix.lower() not in SUPPORTED:
                    raise InvalidInput(
                        f"{name}: unsupported file type; use {', '.join(SUPPORTED)}",
                        zh=f"{name}：不支持的文件类型；请使用 {'、'.join(SUPPORTED)}",
                    )
                if src.stat().st_size > MAX_UPLOAD_BYTES:
                    raise InvalidInput(
                        f"{name}: {src.stat().st_size // 1024} KB is over the 5 MB limit",
                        zh=f"{name}：{src.stat().st_size // 1024} KB，超过 5 MB 上限",
                    )
                shutil.copyfile(src, staged / name)
            check = load_kb(staged)
            if not check.entries:
                details = "; ".join(check.problems[:5]) or "no question/answer entries found"
                raise InvalidInput(f"Nothing loaded from the upload: {details}", zh=f"上传的文件中没有可用内容：{details}")
            self.uploads_dir.mkdir(parents=True, exist_ok=True)
            if replace:
                for old in self.uploads_dir.iterdir():
                    if old.is_file():
                        old.unlink()
            for path in staged.iterdir():
                os.replace(path, self.uploads_dir / path.name)
            marker = self.uploads_dir / REPLACE_MARKER
            if replace:
                marker.write_text("the uploaded files replace the bundled knowledge base\n")
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        new_index = self._build_index(self.kb_dirs())
        with self._lock:
            self._index = new_index  # chats in flight finish on the old index
        return new_index.kb

    def reset_uploads(self) -> KnowledgeBase:
        """Forget uploaded files and go back to the bundled / configured KB."""
        if self.uploads_dir.is_dir():
            shutil.rmtree(self.uploads_dir)
        new_index = self._build_index(self.kb_dirs())
        with self._lock:
            self._index = new_index
        return new_index.kb

    # -- learning from ratings -------------------------------------------------------------

    def _on_rating(self, record: Any) -> None:
        if self.learning is not None and record.tab == "support":
            self.learning.apply(record.to_dict())

    def knowledge_gaps(self) -> list[dict[str, Any]]:
        self.index()
        assert self.learning is not None
        return self.learning.knowledge_gaps()

    def retrieve(self, message: str, history: list[dict[str, str]], *, top_k: int = 3) -> tuple[list[Hit], float, str]:
        """Search with the message alone and, for follow-ups, with the previous question too."""
        index = self.index()
        hits, confidence = index.search(message, top_k=top_k)
        previous = [m["content"] for m in history if m["role"] == "user"]
        query = message
        if previous and is_follow_up(message):
            # "and how long does it take?" means the earlier topic: search with both, and
            # keep the joined search unless the message alone is clearly more confident.
            joined = f"{previous[-1]} {message}"
            hits2, confidence2 = index.search(joined, top_k=top_k)
            if confidence2 + 0.05 >= confidence:
                hits, confidence, query = hits2, confidence2, joined
        return hits, confidence, query

    def chat(self, message: object, history: Any = None, *, session_id: str = "") -> dict[str, Any]:
        text = self.validate(message)
        messages = normalize_history(history)
        variant = assign(self.settings.variant_table, "support", session_id)
        overrides = apply(variant, {}, ("answer_mode", "min_confidence"))
        lang = _lang(text)
        started = time.perf_counter()
        sources: list[dict[str, Any]] = []
        confidence = 0.0
        reason = ""
        mode = "extractive"
        earlier_frustration = sum(bool(FRUSTRATION.search(m["content"])) for m in messages if m["role"] == "user")
        if HUMAN_REQUEST.search(text):
            answer, reason = HANDOFF_REQUESTED[lang], "requested"
        elif FRUSTRATION.search(text) and earlier_frustration >= 1:
            answer, reason = HANDOFF_REQUESTED[lang], "frustration"
        elif (verified := self._verified_answer(text, messages)) is not None:
            answer, sources, confidence = verified
            mode = "verified"
        else:
            hits, confidence, _query = self.retrieve(text, messages)
            if confidence < float(overrides.get("min_confidence", self.settings.support_min_confidence)):
                answer, reason = HANDOFF_MESSAGE[lang], "low_confidence"
                sources = [h.as_source(i) for i, h in enumerate(hits, start=1)]
            else:
                best = hits[:3]
                sources = [h.as_source(i) for i, h in enumerate(best, start=1)]
                answer, mode = self._answer(text, messages, best, answer_mode=overrides.get("answer_mode"))
        handoff = bool(reason)
        latency_ms = (time.perf_counter() - started) * 1000
        conversation = messages + [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        model_info = self.registry.info("text") if mode == "llm" else self.registry.info("embed")
        output = GeneratedOutput(
            tab="support",
            model=model_info,
            params={"answer_mode": mode, "confidence": round(confidence, 3), "handoff_reason": reason or None},
            prompt=text,
            messages=conversation,
            output={"text": answer, "handoff": handoff},
            sources=sources,
            latency_ms=round(latency_ms, 1),
            session_id=session_id,
            variant=variant.name if variant else None,
        )
        self.feedback.register(output)
        if handoff:
            self._record_handoff(output, reason)
            if self.learning is not None:
                self.learning.note_handoff({"reason": reason, "output_id": output.output_id, "ts": utc_now(),
                                            "messages": output.messages, "sources": sources})
        return {
            "output_id": output.output_id,
            "answer": answer,
            "sources": sources,
            "handoff": handoff,
            "handoff_reason": reason or None,
            "confidence": round(confidence, 3),
            "answer_mode": None if handoff else mode,
        }

    def _verified_answer(self, text: str, history: list[dict[str, str]]) -> tuple[str, list[dict[str, Any]], float] | None:
        """An upvoted earlier answer to the same or a close question, cited as verified."""
        self.index()
        if self.learning is None or (history and is_follow_up(text)):
            return None  # a follow-up means the conversation's topic, not a stored question
        found = self.learning.match(text)
        if found is None:
            return None
        verified, score = found
        first = dict(verified.sources[0]) if verified.sources else {"id": f"verified:{verified.output_id}", "rank": 1}
        first.update(
            rank=1, verified=True, verified_from=verified.output_id, verified_question=verified.question, score=round(score, 4)
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

    def _record_handoff(self, output: GeneratedOutput, reason: str) -> None:
        try:
            self.feedback.append(
                "handoffs",
                {
                    "schema": 1,
                    "id": new_id(),
                    "ts": utc_now(),
                    "output_id": output.output_id,
                    "session_id": output.session_id,
                    "reason": reason,
                    "messages": output.messages,
                    "sources": output.sources,
                },
            )
        except AigcError as exc:  # the customer still gets the handoff message
            log.error("handoff record not saved: %s", exc.message)


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
