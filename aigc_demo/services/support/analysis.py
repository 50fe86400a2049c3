"""Text analysis for support retrieval, Chinese first, with the field's own libraries.

``normalize`` folds what customers type into one form: NFKC (full-width letters and
digits → ASCII), traditional → simplified Chinese (OpenCC ``t2s``), lower case.

``Analyzer`` turns normalized text into index terms and a query into *units*. A unit is
one thing the customer said (an English word, a Chinese word or character pair) with
its *alternatives*: the term itself, the same sound in pinyin (a homophone typo such as
包修 for 保修 still finds 保修), a close spelling (refnd → refund), and its translations
(退款 ↔ refund, from CC-CEDICT). Scoring takes the best alternative of each unit, so a
word with five translations counts once, like Lucene's synonym query.

Chinese is segmented with jieba, into a tokenizer of its own per knowledge base with
the KB's vocabulary added (terms that recur across entries, e.g. 上门费, 以旧换新),
and indexed as words, character bigrams (robust to segmentation errors) and single
characters (short queries such as "退款").
"""

from __future__ import annotations

import difflib
import itertools
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aigc_demo.services.lang import CJK
from aigc_demo.services.support.lexicon import Lexicon
from aigc_demo.services.support.stemmer import stem

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")  # "what's" → what, s (s is a stopword)
# A brand right before a device word, or a device's own name, is what the customer uses
# (华为手机上看不了视频, "on my Samsung phone", "iPhone"), not the product asked about.
# Likewise where it was bought (京东买的, 天猫旗舰店下单, "ordered it on Amazon").
_DEVICE_AFTER_ZH = re.compile(r".{0,2}?(手机|平板|电脑|笔记本|浏览器|手表|系统|买|购|下单|下的单|旗舰店|自营)")
_BOUGHT_BEFORE_EN = re.compile(
    r"\b(bought|ordered|purchased|paid)\b(\s+\w+){0,2}\s+(on|from|at|via|through|with)\s*$", re.IGNORECASE
)
_DEVICE_AFTER_EN = re.compile(r"\s*(phone|tablet|laptop|computer|pc|browser|watch|device|tv)s?\b", re.IGNORECASE)
_DEVICE_NAME = re.compile(r"i(phone|pad|pod|mac|os)|macbook|android|windows|chromebook|galaxy|pixel|harmonyos")
# "Do you sell X?" / 你们卖X吗: whether the shop has a product, the product named right after the verb.
_STOCK_EN = re.compile(
    r"\b(?:do|does|can|will)\s+(?:you|u|your\s+(?:store|shop))\s+(?:still\s+|also\s+)?(?:sell|stock|carry)\s+"
    r"(?:any\s+|the\s+)?([a-z][a-z0-9 -]{1,40}?)\s*(?:[?.,!]|$|\b(?:in|at|on|online|here|now)\b)",
    re.IGNORECASE,
)
_STOCK_ZH = re.compile(r"(?:卖|有售|出售|售卖)(?![的了过掉完])([\u4e00-\u9fff]{2,8}?)(?:吗|么|嘛|不|没|呢|$)")
_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*|[A-Z][a-z0-9]+")  # AirPods, iPhone, Coursera
EN_STOP = frozenset(
    (
        "a an the is are was were be been do does did i you we they it its my your our me us to of in on for "
        "and or with at by from can could would should will how what when where which who why this that these "
        "those there have has had if so as about any please hi hello thanks thank s t ll re ve m d get got "
        "just want need am im dont doesnt not no yes ok okay hey guys u ur pls plz still really very much "
        "many some one"
    ).split()
)
# Single characters that carry no topic: particles, pronouns, colloquial fillers.
ZH_STOP_CHARS = frozenset(
    "的了吗呢吧啊呀哦哈嘛么是我你您他她它在有和就都也要会能可以怎什么请问咋啥嗯呗哇噢这那个一下些还又"
)
# Function-word and filler pairs: they match almost any question, so they are no evidence.
ZH_STOP_WORDS = frozenset(
    (
        "你们 我们 他们 怎么 什么 可以 是不 不是 这个 那个 一个 如果 因为 所以 还是 或者 但是 "
        "已经 现在 时候 哪里 哪个 请问 能否 是否 需要 一下 的话 么办 怎样 的时 么时 怎么办 咋办 "
        "咋整 怎么样 为什么 为啥 你好 您好 谢谢 麻烦 想问 问一下 知道 告诉 一下子 有没有 能不能 "
        "可不可以 是不是 要不要 多少 多久 好的 然后 就是 这样 那样 这么 那么 真的 到底 吗 呢 啊 "
        "吧 哦 呀 我想 我要 我的 你们的 帮我 给我"
    ).split()
)
# Unit weights: a character alone says less than a word; a sound or a translation is
# weaker evidence than the word itself.
WEIGHT_CHAR = 0.2
FACTOR_PINYIN = 0.8
FACTOR_SPELLING = 0.8
FACTOR_TRANSLATION = 0.9


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """NFKC, traditional → simplified, lower case: the one form both sides are matched in."""
    text = unicodedata.normalize("NFKC", text)
    if CJK.search(text):
        text = _t2s().convert(text)
    return text.lower()


@lru_cache(maxsize=65536)
def pinyin(text: str) -> str:
    """Toneless pinyin of Chinese text ("保修" → "bao xiu"): same sound, same key."""
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(text))


def english_terms(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text) if w not in EN_STOP]


_TOKENIZER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _default_jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    with _TOKENIZER_LOCK:
        tokenizer.initialize()  # ~1 s the first time; jieba caches the prefix dict in the temp dir
    return tokenizer


def _new_jieba() -> Any:
    """A segmenter of its own (so one KB's words do not leak into another's), from the shared dictionary."""
    import jieba

    base = _default_jieba()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total = dict(base.FREQ), base.total
    tokenizer.initialized = True
    return tokenizer


@dataclass
class Unit:
    """One thing the customer said, with the index terms that can stand for it."""

    text: str
    weight: float
    alternatives: dict[str, float] = field(default_factory=dict)  # term → factor (1 = the term itself)


class Analyzer:
    """Terms for the index and units for queries; one per knowledge base."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon
        self._jieba = _new_jieba()
        self.vocabulary: Counter[str] = Counter()  # index term → document frequency
        self._english_vocab: list[str] = []
        self._zh_words: set[str] = set()

    # -- building ------------------------------------------------------------------------

    def learn_vocabulary(self, texts: list[str]) -> list[str]:
        """Add the KB's recurring Chinese terms to the segmenter; returns the words added.

        A 3-4 character run that appears in two or more entries and that jieba would split
        is a term of this business (上门费, 以旧换新): segmenting it whole keeps it one word.
        """
        counts: Counter[str] = Counter()
        for text in texts:
            seen: set[str] = set()
            for run in CJK.findall(normalize(text)):
                for n in (3, 4):
                    for i in range(len(run) - n + 1):
                        gram = run[i : i + n]
                        if gram[0] not in ZH_STOP_CHARS and gram[-1] not in ZH_STOP_CHARS:
                            seen.add(gram)
            counts.update(seen)
        added = []
        for gram, df in counts.items():
            if df >= 2 and len(self._jieba.lcut(gram, HMM=False)) > 1:
                self._jieba.add_word(gram, freq=max(df, 5) * 100)
                added.append(gram)
        return added

    def index_terms(self, text: str) -> list[str]:
        """Terms a document is indexed under (with repeats: BM25 counts them)."""
        text = normalize(text)
        terms = english_terms(text)
        for run in CJK.findall(text):
            terms.extend(c for c in run if c not in ZH_STOP_CHARS)
            for a, b in itertools.pairwise(run):
                pair = a + b
                if pair not in ZH_STOP_WORDS:
                    terms.append(pair)
                    terms.append("py:" + pinyin(pair))
            for word in self._jieba.lcut(run):
                if len(word) >= 3 and word not in ZH_STOP_WORDS:
                    terms.append(word)
                    terms.append("py:" + pinyin(word))
        return terms

    def fit(self, docs: list[list[str]]) -> None:
        """Remember which terms the KB has (for spelling, translation and 'unknown' words)."""
        self.vocabulary = Counter()
        for terms in docs:
            self.vocabulary.update(set(terms))
        self._english_vocab = sorted(t for t in self.vocabulary if t.isascii() and not t.startswith("py:"))
        self._zh_words = {t for t in self.vocabulary if CJK.fullmatch(t) and len(t) >= 2}
        # The KB's Chinese words as one romanised word: "Qinghe" is 青禾, "Huabei" is 花呗.
        self._romanised = {pinyin(w).replace(" ", ""): w for w in sorted(self._zh_words, key=len)}

    # -- queries -------------------------------------------------------------------------

    def units(self, text: str) -> list[Unit]:
        """What the query says, one unit per word / character pair / character."""
        text = normalize(text)
        units = self._english_units(text)
        units.extend(self._phrase_units(text))
        for run in CJK.findall(text):
            units.extend(self._chinese_units(run))
        return _merge(units)

    def _english_units(self, text: str) -> list[Unit]:
        """One unit per English word, with close spellings, translations and romanised KB words."""
        raw_words = {stem(w): w for w in _WORD.findall(text) if len(w) >= 4}  # stem → as typed, for romanised names
        units: list[Unit] = []
        for word in english_terms(text):
            unit = Unit(word, 1.0, {word: 1.0})
            typed = raw_words.get(word, word)
            if self._needs_spelling(word, typed):
                for close in difflib.get_close_matches(word, self._english_vocab, n=2, cutoff=0.8):
                    unit.alternatives.setdefault(close, FACTOR_SPELLING)
            if self.lexicon is not None:
                for zh in self.lexicon.to_chinese(word, self._zh_words):
                    unit.alternatives.setdefault(zh, FACTOR_TRANSLATION)
            if word in raw_words and word not in self.vocabulary and raw_words[word] in self._romanised:
                unit.alternatives.setdefault(self._romanised[raw_words[word]], FACTOR_PINYIN)
            units.append(unit)
        return units

    def _needs_spelling(self, word: str, typed: str) -> bool:
        # A close spelling only for a word no dictionary has (refnd), not for another real
        # word (recipe is not receipt).
        real = self.lexicon is not None and typed in self.lexicon.english_words
        return word not in self.vocabulary and len(word) >= 4 and not word.isdigit() and not real

    def _phrase_units(self, text: str) -> list[Unit]:
        """Two-word terms: "air conditioner" → 空调."""
        if self.lexicon is None:
            return []
        units: list[Unit] = []
        english = english_terms(text)
        for phrase in map(" ".join, itertools.pairwise(english)):
            if zh_words := self.lexicon.to_chinese(phrase, self._zh_words):
                units.append(Unit(phrase, 1.0, dict.fromkeys(zh_words, FACTOR_TRANSLATION)))
        return units

    def _chinese_units(self, run: str) -> list[Unit]:
        """Units of one run of Chinese: its words, character pairs and characters."""
        units: list[Unit] = []
        words = self._jieba.lcut(run)
        for i, word in enumerate(words):
            if word in ZH_STOP_WORDS or word in ZH_STOP_CHARS:
                continue
            if len(word) >= 2:
                units.append(self._word_unit(word))
                # Parts of a long word still match a shorter wording (以旧换新 → 换新).
                if len(word) >= 3:
                    units.extend(self._pair_unit(word[j : j + 2], 0.5) for j in range(len(word) - 1))
            elif i + 1 < len(words) and len(words[i + 1]) == 1 and words[i + 1] not in ZH_STOP_CHARS:
                # Two single characters in a row: often a word jieba does not know,
                # or a typo of one (包修 for 保修), which its pinyin still finds.
                units.append(self._pair_unit(word + words[i + 1], 1.0))
        units.extend(Unit(char, WEIGHT_CHAR, {char: 1.0}) for char in run if char not in ZH_STOP_CHARS)
        return units

    def foreign_names(self, text: str) -> list[str]:
        """Names of companies or brands in the question that the KB never mentions (格力,
        Coursera, AirPods): a question about someone else's product, however alike.

        Chinese: CC-CEDICT's brand names, in any spelling the KB lacks. English: a capitalised
        word inside a sentence (or a CamelCase one) that the KB does not have, in any form,
        and that is a known brand or no dictionary word at all (so not "Chengdu" or "Monday").
        The customer's own device and where they bought are context, not the subject
        (华为手机, "my iPhone", 京东买的, "ordered it on Amazon").
        """
        if self.lexicon is None:
            return []
        names: list[str] = []
        for run in CJK.findall(normalize(text)):
            self._chinese_foreign_names(run, self.lexicon, names)
        self._english_foreign_names(unicodedata.normalize("NFKC", text), self.lexicon, names)
        return names

    def _unknown_name(self, lexicon: Lexicon, name: str) -> bool:
        """Whether the KB has the name in none of its spellings."""
        for spelling in lexicon.spellings(name):
            if spelling in self.vocabulary or stem(spelling) in self.vocabulary or spelling in self._romanised:
                return False
        return True

    def _chinese_foreign_names(self, run: str, lexicon: Lexicon, names: list[str]) -> None:
        """Append to ``names`` the unknown brands in one run of Chinese."""
        for word in self._jieba.lcut_for_search(run):
            if word[0] == word[-1]:
                continue  # reduplication is a sound or a tone (洗衣机滴滴叫), not 滴滴 the company
            if len(word) >= 2 and lexicon.is_brand(word) and self._unknown_name(lexicon, word) and word not in names:
                if not _DEVICE_AFTER_ZH.match(run, run.find(word) + len(word)):
                    names.append(word)

    def _english_foreign_names(self, text: str, lexicon: Lexicon, names: list[str]) -> None:
        """Append to ``names`` the unknown capitalised or CamelCase names in NFKC ``text``."""
        for match in _NAME_TOKEN.finditer(text):
            token = match.group()
            before = text[: match.start()].rstrip()
            lower = token.lower()
            if not _is_name_candidate(token, before):
                continue  # a sentence's first word, or an acronym (SMS, VIP)
            if (
                _DEVICE_NAME.fullmatch(lower)
                or _DEVICE_AFTER_EN.match(text, match.end())
                or _BOUGHT_BEFORE_EN.search(before)
            ):
                continue  # the customer's own phone, or where they bought: context, not the subject
            if (
                (lexicon.is_brand(lower) or lower not in lexicon.english_words)
                and self._unknown_name(lexicon, lower)
                and token not in names
            ):
                names.append(token)

    def unknown_product(self, text: str) -> str | None:
        """The product in "Do you sell X?" / 你们卖X吗 when the KB never mentions it, in any
        spelling or translation (spaceships, 宇宙飞船): a question the FAQ cannot answer,
        however well its other words match an entry about selling."""
        folded = normalize(text)
        match = _STOCK_EN.search(folded) or _STOCK_ZH.search(folded)
        if match is None:
            return None
        product = match.group(1).strip()
        words = [u for u in self.units(product) if u.weight >= 0.5]
        if not words or any(t in self.vocabulary for u in words for t in u.alternatives):
            return None
        return product

    def _word_unit(self, word: str) -> Unit:
        alternatives = {word: 1.0, "py:" + pinyin(word): FACTOR_PINYIN}
        if self.lexicon is not None:
            for en in self.lexicon.to_english(word, self.vocabulary):
                alternatives.setdefault(en, FACTOR_TRANSLATION)
        return Unit(word, 1.0, alternatives)

    @staticmethod
    def _pair_unit(pair: str, weight: float) -> Unit:
        return Unit(pair, weight, {pair: 1.0, "py:" + pinyin(pair): FACTOR_PINYIN})


def _is_name_candidate(token: str, before: str) -> bool:
    """A word inside a sentence (or a CamelCase one), not an acronym or a stopword."""
    inside = bool(before) and before[-1] not in ".!?。！？:：\n\"'“‘(（"
    camel = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    lower = token.lower()
    return (inside or camel) and len(lower) >= 3 and lower not in EN_STOP and not token.isupper()


def _merge(units: list[Unit]) -> list[Unit]:
    """One unit per text (a repeated word is not stronger evidence)."""
    merged: dict[str, Unit] = {}
    for unit in units:
        if unit.text in merged:
            kept = merged[unit.text]
            kept.weight = max(kept.weight, unit.weight)
            for term, factor in unit.alternatives.items():
                kept.alternatives[term] = max(kept.alternatives.get(term, 0.0), factor)
        else:
            merged[unit.text] = unit
    return list(merged.values())


def simple_terms(text: str) -> list[str]:
    """KB-independent terms (English stems, Chinese words, pairs and characters).

    For comparing two short texts (verified answers, answer support checks), where no
    index is at hand.
    """
    text = normalize(text)
    terms = english_terms(text)
    for run in CJK.findall(text):
        terms.extend(c for c in run if c not in ZH_STOP_CHARS)
        terms.extend(a + b for a, b in itertools.pairwise(run) if a + b not in ZH_STOP_WORDS)
    return terms


def idf(n_docs: int, df: int) -> float:
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
