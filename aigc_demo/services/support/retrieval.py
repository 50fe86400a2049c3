"""Hybrid retrieval: BM25 over words and CJK character n-grams, plus embeddings, fused.

* The keyword ranker tokenises Latin text into lower-cased words and Chinese (CJK)
  text into character unigrams and bigrams — no segmenter needed, and it matches
  short queries like "退款" against "退款多久到账".
* The dense ranker is a sentence-transformers embedder (cosine similarity).
* Relative score fusion merges them: each ranker's scores min-max normalised, summed
  with a weight that shrinks when the embedder cannot separate the documents.
* ``confidence`` (0..1) decides answer vs. handoff: the best of the top hit's
  IDF-weighted query-term coverage and its cosine similarity, discounted by how well
  the embedder separates this query's documents and by how far the embedder can be
  trusted in the query's script at all — measured on the KB itself at index time
  (does each question land nearest its own answer?). The English-only offline
  embedder thus decides nothing for Chinese, where character n-grams carry it; a
  multilingual embedder (gpu profile) earns its say in both.

Embeddings are cached on disk keyed by the KB fingerprint and model id, so a restart
with unchanged files does not re-embed.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.services.lang import CJK, contains_cjk  # noqa: F401 - re-exported for support modules
from aigc_demo.services.support.kb import Entry, KnowledgeBase

log = logging.getLogger(__name__)

_CJK = CJK
_WORD = re.compile(r"[a-z0-9]+")  # "what's" → what, s (s is a stopword)
_STOP = set(
    "a an the is are was were be been do does did i you we they it its my your our me us to of in on for and or "
    "with at by from can could would should will how what when where which who why this that these those there "
    "have has had if so as about any please hi hello thanks thank s t ll re ve".split()
)
_ZH_STOP = set("的了吗呢吧啊是我你在有和就都也要会能可以怎么什么么请问")
# Function-word bigrams: they match almost any question, so they are no evidence.
_ZH_STOP_BIGRAMS = set(
    "你们 我们 他们 怎么 什么 可以 是不 不是 这个 那个 一个 如果 因为 所以 还是 或者 但是 已经 现在 时候 "
    "哪里 哪个 请问 能否 是否 需要 一下 的话 么办 怎样 的时 么时".split()
)


def tokenize(text: str) -> list[str]:
    text = text.lower()
    tokens = [_stem(w) for w in _WORD.findall(text) if w not in _STOP]
    for run in _CJK.findall(text):
        chars = [c for c in run]
        tokens.extend(c for c in chars if c not in _ZH_STOP)
        tokens.extend(a + b for a, b in zip(chars, chars[1:]) if a + b not in _ZH_STOP_BIGRAMS)
    return tokens


def _stem(word: str) -> str:
    # A light English stemmer is enough for FAQ matching: returns/returned/returning → return.
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class BM25:
    def __init__(self, docs: list[list[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = np.array([len(d) for d in docs], dtype=np.float32)
        self.avg = float(self.lengths.mean()) if len(docs) else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> np.ndarray:
        out = np.zeros(len(self.tfs), dtype=np.float32)
        for i, tf in enumerate(self.tfs):
            norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg or 1))
            out[i] = sum(self.idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in set(query) if t in tf)
        return out

    def coverage(self, query: list[str], doc: int) -> float:
        """IDF-weighted share of query terms that the document contains."""
        terms = set(query)
        # Terms unseen in the KB get the highest IDF: an off-topic word counts against coverage.
        max_idf = max(self.idf.values(), default=1.0)
        total = sum(self.idf.get(t, max_idf) for t in terms)
        hit = sum(self.idf[t] for t in terms if t in self.tfs[doc])
        return hit / total if total else 0.0


@dataclass
class Hit:
    entry: Entry
    score: float  # fused score (0..2.1)
    keyword: float
    dense: float
    coverage: float

    def as_source(self, rank: int) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "rank": rank,
            "title": self.entry.question,
            "snippet": self.entry.answer[:240],
            "url": self.entry.url,
            "category": self.entry.category,
            "score": round(self.score, 4),
            "keyword_score": round(self.keyword, 3),
            "dense_score": round(self.dense, 3),
        }


class HybridIndex:
    def __init__(self, kb: KnowledgeBase, embedder: Any, *, cache_dir: Path | None = None) -> None:
        self.kb = kb
        self.embedder = embedder
        self.bm25 = BM25([tokenize(e.text) for e in kb.entries])
        self.is_cjk = np.array([contains_cjk(e.text) for e in kb.entries], dtype=bool)
        self.vectors, question_vectors, answer_vectors = self._embed_entries(cache_dir)
        self.dense_trust = {
            script: self._calibrate(question_vectors, answer_vectors, self.is_cjk == (script == "cjk"))
            for script in ("cjk", "latin")
        }

    def _embed_entries(self, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectors of entry texts (for search) and of questions and answers alone (calibration)."""
        entries = self.kb.entries
        texts = [e.text for e in entries] + [e.question for e in entries] + [e.answer for e in entries]
        n = len(entries)
        cache = None
        if cache_dir is not None:
            model = re.sub(r"[^A-Za-z0-9_.-]+", "_", getattr(self.embedder, "model_id", "embedder"))
            cache = Path(cache_dir) / f"kb-{self.kb.fingerprint}-{model}-v2.npy"
            if cache.exists():
                vectors = np.load(cache)
                if vectors.shape[0] == len(texts):
                    return vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
        vectors = self.embedder.embed(texts)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                tmp.replace(cache)
            except OSError as exc:  # a read-only cache only costs time
                log.warning("could not cache KB embeddings: %s", exc)
        return vectors[:n], vectors[n : 2 * n], vectors[2 * n :]

    @staticmethod
    def _calibrate(questions: np.ndarray, answers: np.ndarray, mask: np.ndarray) -> float:
        """How far to trust the embedder for one script, measured on this KB (0..1).

        Each question should be nearest to its own answer. An embedder that does this for
        most entries (English MiniLM on English: ~all) is trusted fully; one that is near
        chance (English MiniLM on Chinese) gets no say in confidence. No labels needed,
        so it works for any KB and any embedder.
        """
        idx = np.flatnonzero(mask)
        if len(idx) < 5:
            return 1.0
        sims = questions[idx] @ answers[idx].T
        accuracy = float((sims.argmax(axis=1) == np.arange(len(idx))).mean())
        return float(np.clip((accuracy - 0.5) / 0.4, 0.0, 1.0))

    def search(self, query: str, *, top_k: int = 3) -> tuple[list[Hit], float]:
        """Top hits (fused) and a 0..1 confidence for the best one."""
        if not self.kb.entries:
            return [], 0.0
        terms = tokenize(query)
        keyword = self.bm25.scores(terms)
        dense = self.vectors @ self.embedder.embed([query])[0]
        want_cjk = contains_cjk(query)
        same_lang = self.is_cjk == want_cjk
        trust = self.dense_trust["cjk" if want_cjk else "latin"]
        # Compare with documents in the query's script: an English-only embedder puts
        # any Chinese text nearer Chinese documents than English ones.
        dense_signal = trust * dense_separation(dense[same_lang] if same_lang.sum() >= 2 else dense)
        # Relative score fusion (min-max normalise each ranker, weighted sum): unlike
        # rank fusion it keeps a clear winner's margin, which matters in a small KB.
        # A ranker that cannot tell documents apart gets less say: an English-only
        # embedder scores every Chinese query ~0.5 against everything.
        fused = _minmax(keyword) + (0.25 + 0.75 * dense_signal) * _minmax(dense)
        # Prefer an answer in the asker's language when the KB has both.
        fused[same_lang] += 0.1
        order = np.argsort(-fused, kind="stable")[:top_k]
        hits = [
            Hit(
                entry=self.kb.entries[i],
                score=float(fused[i]),
                keyword=float(keyword[i]),
                dense=float(dense[i]),
                coverage=self.bm25.coverage(terms, int(i)),
            )
            for i in order
        ]
        best = hits[0]
        confidence = max(best.coverage, dense_signal * best.dense)
        return hits, float(max(0.0, min(1.0, confidence)))


def _minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


def dense_separation(scores: np.ndarray) -> float:
    """0..1: how far the best cosine stands above the typical one (0.3 apart = fully)."""
    if len(scores) < 2:
        return 1.0
    return float(np.clip((scores.max() - np.median(scores)) / 0.3, 0.0, 1.0))
