"""English stemming, shared by the dictionary (lexicon.py) and the analyser (analysis.py)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball's English stemmer, the same on both sides (and for CC-CEDICT's glosses):
    renewal / renew → renew, cancellation → cancel, shipping / shipped → ship."""
    return _snowball().stemWord(word)


@lru_cache(maxsize=1)
def _snowball() -> Any:
    # snowballstemmer hands back PyStemmer's C implementation when it is installed.
    import snowballstemmer

    return snowballstemmer.stemmer("english")
