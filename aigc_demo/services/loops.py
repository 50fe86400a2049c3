"""Loop guard: notice when a small model starts repeating itself, and end the answer there.

Small models (the offline 0.5B and 135M ones above all) fall into loops: the same slogan or
poem line again, one sentence over and over, or a run like "爱爱爱爱…". A repetition penalty
in the sampler makes loops rarer but cannot tell a loop from a word that must recur; what it
misses the reader sees, and it wastes the rest of the token budget. The guard reads the text
as it streams and answers where the first repeat begins, so the service can stop the model
and keep the answer up to that point.

What counts as a loop (fixed before measuring, kept only because it measured better on data
it was not chosen on — bench/RESULTS.md, "loop guard"):

- a **line** of at least ``MIN_UNIT`` letters that equals an earlier line, once list markers,
  numbering and punctuation are stripped ("1. 好" and "3. 好" are one line);
- a **sentence** (ended by 。！？!? or a full stop and a space) of at least ``MIN_UNIT``
  letters that equals an earlier one;
- but a line or sentence shorter than ``LONG_UNIT`` letters only on its *third* appearance: a
  brand name or a sign-off may fairly come twice ("…with pawFresh!" PawFresh. was cut on its
  second one, mid-list);
- a **run**: the text ends with the same piece of 1–40 characters three or more times in a
  row, at least ``MIN_RUN`` characters in all ("哈哈哈" is fine, a line of forty 爱 is not).

Lines inside a fenced code block are not compared (code repeats lines on purpose), and runs
of punctuation or symbols (a Markdown rule "-----") are not loops.
"""

from __future__ import annotations

import re
import unicodedata

MIN_UNIT = 6  # letters in a line or sentence before an exact repeat counts as a loop
LONG_UNIT = 12  # shorter ones count on their third appearance, longer ones on their second
MIN_RUN = 24  # characters a run must cover
MAX_PERIOD = 40
MIN_REPEATS = 3

_MARKER = re.compile(r"^[\s>*#\-•·+]*(?:\(?\d{1,3}[.)、:：)]|[一二三四五六七八九十]+[、.])?\s*")
_SENTENCE_END = re.compile(r"[。！？!?]+|\.(?=\s)")


def _letters(text: str) -> str:
    """The text's letters and digits, lower-cased: what two lines must share to be one line."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _key(line: str) -> str:
    return _letters(_MARKER.sub("", line, count=1))


def _repeats(seen: dict[str, int], key: str) -> bool:
    """Count ``key``; True when this appearance makes it a loop."""
    seen[key] = seen.get(key, 0) + 1
    return seen[key] >= (2 if len(key) >= LONG_UNIT else 3)


def _line_repeat(text: str) -> int | None:
    seen: dict[str, int] = {}
    offset, fenced = 0, False
    for line in text.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        if not line.endswith("\n"):
            break  # the line is still being written
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        key = _key(line)
        if fenced or len(key) < MIN_UNIT:
            continue
        if _repeats(seen, key):
            return start
    return None


def _sentence_repeat(text: str) -> int | None:
    seen: dict[str, int] = {}
    start = 0
    for end in _SENTENCE_END.finditer(text):
        piece = text[start : end.end()]
        key = _key(piece.strip())
        if len(key) >= MIN_UNIT and _repeats(seen, key):
            return start + (len(piece) - len(piece.lstrip()))
        start = end.end()
    return None


def _run(text: str) -> int | None:
    tail = text.rstrip()
    for period in range(1, MAX_PERIOD + 1):
        unit = tail[len(tail) - period :]
        if len(unit) < period or not any(unicodedata.category(ch)[0] in "LN" for ch in unit):
            continue
        repeats = 1
        while tail.endswith(unit * (repeats + 1)):
            repeats += 1
        if repeats >= MIN_REPEATS and repeats * period >= MIN_RUN:
            return len(tail) - (repeats - 1) * period  # keep the first occurrence
    return None


def loop_start(text: str) -> int | None:
    """Where the first repeat in ``text`` begins (cut there), or None when it does not loop."""
    found = [at for at in (_line_repeat(text), _sentence_repeat(text), _run(text)) if at is not None]
    return min(found) if found else None


class LoopGuard:
    """Checks a growing text as it streams; cheap enough to call on every chunk (it looks
    again only once a line or sentence has ended, or every ``MIN_RUN`` characters)."""

    def __init__(self) -> None:
        self._checked = 0

    def check(self, text: str) -> int | None:
        grown = len(text) - self._checked
        if grown <= 0:
            return None
        tail = text[self._checked :]
        if grown < MIN_RUN and not any(ch in tail for ch in "\n。！？!?."):
            return None
        self._checked = len(text)
        return loop_start(text)
