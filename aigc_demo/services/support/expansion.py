"""Index-time question generation ("doc2query"): questions a customer might ask of each entry.

A KB entry is written the way its author thinks ("空调移机怎么收费？"); customers ask the way they
talk ("我搬家了空调能帮忙拆装吗多少钱"), and often in the other language. The text model reads
each entry once and writes a few such questions, in the entry's language and in the other one;
the index then matches a customer's question against them as well (retrieval.py). This is done
once per entry and model — the results are cached on disk by a hash of the entry's text, so a
restart, a re-upload or an edited KB only generates what changed.

A small model writes some nonsense: a line is kept only if it reads as a question in the
language asked for, is short, and is not a copy of the answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigc_demo.models.base import TextRequest
from aigc_demo.services.lang import main_script
from aigc_demo.services.support.kb import Entry, KnowledgeBase

log = logging.getLogger(__name__)

# Bumped whenever the prompts or the filter change: cached questions of another version are redone.
VERSION = "1"
# How many questions in the entry's own language and in the other one.
SAME_LANGUAGE = 3
OTHER_LANGUAGE = 2
MAX_CHARS = {"zh": 40, "en": 120}
ANSWER_CHARS = 400  # how much of the answer the model reads

SYSTEM = {
    "zh": "你是客服知识库编辑。根据给出的条目，写出顾客可能会问的问题，每行一个，不要编号，不要回答。",
    "en": "You edit a customer-service knowledge base. From the entry given, write questions customers "
    "might ask, one per line, no numbering, no answers.",
}
ASK = {
    "zh": "条目标题：{question}\n条目内容：{answer}\n\n请用口语化的中文写{n}个顾客会问的不同问题，每行一个。",
    "en": "Entry title: {question}\nEntry text: {answer}\n\nWrite {n} different questions a customer might "
    "ask about this, in plain everyday English, one per line.",
}
_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.、)）:]|[（(]\d+[)）]|Q\d*[:：])\s*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def entry_key(entry: Entry, model_id: str) -> str:
    """The cache key: what the model reads, which model, which prompts."""
    text = "\x1f".join((VERSION, model_id, entry.question, entry.answer[:ANSWER_CHARS]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def keep(line: str, lang: str, entry: Entry) -> str | None:
    """The line as a question, or None when it is not one worth indexing."""
    line = _NUMBERING.sub("", line.strip()).strip().strip('"“”')
    if not line or len(line) > MAX_CHARS[lang]:
        return None
    han = len(_HAN.findall(line))
    if lang == "zh" and han < 3:
        return None
    if lang == "en" and (han or len(line.split()) < 3):  # "How long … new家电?" mixes scripts
        return None
    if line.rstrip("?？") in entry.answer:  # a sentence copied from the answer is no question
        return None
    return line


def generate(model: Any, entry: Entry) -> list[str]:
    """New questions for one entry: in its own language, then in the other one."""
    own = main_script(entry.text)
    other = "en" if own == "zh" else "zh"
    found: list[str] = []
    for lang, n in ((own, SAME_LANGUAGE), (other, OTHER_LANGUAGE)):
        prompt = ASK[lang].format(question=entry.question, answer=entry.answer[:ANSWER_CHARS], n=n)
        request = TextRequest(
            messages=[{"role": "system", "content": SYSTEM[lang]}, {"role": "user", "content": prompt}],
            max_new_tokens=40 * n,
            temperature=0.0,
            repeat_penalty=1.1,
        )
        lines = [q for q in (keep(line, lang, entry) for line in "".join(model.stream(request)).splitlines()) if q]
        seen = {q.casefold() for q in found} | {entry.question.casefold()}
        for q in lines[:n]:
            if q.casefold() not in seen:
                found.append(q)
                seen.add(q.casefold())
    return found


class QuestionCache:
    """Generated questions by entry key, in one JSON file in the cache dir (written atomically)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.path = Path(cache_dir) / "support-questions.json" if cache_dir is not None else None
        self._lock = threading.Lock()
        self.questions: dict[str, list[str]] = {}
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.questions = {
                    k: [q for q in v if isinstance(q, str)] for k, v in data.items() if isinstance(v, list)
                }
            except (OSError, ValueError, AttributeError) as exc:  # a damaged cache is redone
                log.warning("generated questions cache unreadable, starting again: %s", exc)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(self.questions, ensure_ascii=False), encoding="utf-8")
                tmp.replace(self.path)
            except OSError as exc:  # a read-only cache only costs time
                log.warning("could not cache generated questions: %s", exc)


def cached(kb: KnowledgeBase, model_id: str, cache_dir: Path | None) -> list[list[str]] | None:
    """Each entry's generated questions, if all of them are cached (else None)."""
    cache = QuestionCache(cache_dir)
    keys = [entry_key(e, model_id) for e in kb.entries]
    if not all(k in cache.questions for k in keys):
        return None
    return [cache.questions[k] for k in keys]


def expand(
    kb: KnowledgeBase,
    model: Any,
    model_id: str,
    cache_dir: Path | None,
    *,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[list[str]] | None:
    """Each entry's generated questions, generating what the cache lacks (saved as it goes).

    ``progress(done, total)`` is called after each entry; ``stop()`` ends early (None returned,
    what was done stays cached)."""
    cache = QuestionCache(cache_dir)
    out: list[list[str]] = []
    total = len(kb.entries)
    for done, entry in enumerate(kb.entries, 1):
        if stop is not None and stop():
            cache.save()
            return None
        key = entry_key(entry, model_id)
        if key not in cache.questions:
            cache.questions[key] = generate(model, entry)
            if done % 8 == 0:
                cache.save()
        out.append(cache.questions[key])
        if progress is not None:
            progress(done, total)
    cache.save()
    return out
