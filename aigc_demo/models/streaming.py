"""From an engine's raw pieces to the text a user may see, the same for every engine.

Two things go wrong between a token stream and the screen:

* **Broken characters.** A Chinese character is three UTF-8 bytes and a small model's
  byte-level tokens often split it; a stream cut at the token limit ends mid-character, and
  a sampler can emit bytes that never form a character at all. Decoding such bytes with
  ``errors="replace"`` puts U+FFFD ("�") on the screen, in the record and in every export.
  :class:`Utf8Decoder` keeps an incomplete character until its last byte arrives, drops
  bytes that cannot start or continue one, and drops the dangling bytes at the end.
  Engines that hand us text rather than bytes (transformers' ``decode``, a remote server)
  may already contain U+FFFD: :class:`VisibleText` removes it.
* **Stop strings across chunks.** "END" may arrive as "E", "ND". :class:`VisibleText`
  holds back the last ``len(longest stop) - 1`` characters until it knows they do not
  begin a stop string, so a stop string never flashes on the screen and then vanishes.
"""

from __future__ import annotations

import codecs

REPLACEMENT = "\ufffd"


class Utf8Decoder:
    """Incremental UTF-8 decoding that never produces U+FFFD."""

    def __init__(self) -> None:
        # "ignore" drops an invalid byte, and a sequence cut short by a new start byte;
        # an incomplete sequence at the end of a chunk is kept for the next chunk.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def decode(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def finish(self) -> str:
        """End of stream: whatever incomplete character is left is dropped."""
        return self._decoder.decode(b"", final=True)


def find_stop(text: str, stops: list[str], start: int = 0) -> int | None:
    """Index of the earliest stop string in ``text[start:]`` (absolute), or None."""
    positions = [text.find(s, start) for s in stops if s]
    positions = [p for p in positions if p >= 0]
    return min(positions) if positions else None


class VisibleText:
    """Accumulates an answer and releases only what is safe to show.

    ``push(piece)`` returns the newly visible text; ``stopped`` turns True once a stop
    string appeared (the text is cut before it, and the caller should stop generating);
    ``finish()`` returns what was held back. ``text`` is the whole visible answer.
    """

    def __init__(self, stops: list[str] | None = None) -> None:
        self.stops = [s for s in (stops or []) if s]
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self._text = ""
        self._shown = 0
        self.stopped = False

    @property
    def text(self) -> str:
        return self._text[: self._shown]

    def push(self, piece: str) -> str:
        if self.stopped or not piece:
            return ""
        piece = piece.replace(REPLACEMENT, "")
        scan_from = max(0, len(self._text) - self._hold)
        self._text += piece
        hit = find_stop(self._text, self.stops, scan_from)
        if hit is not None:
            self._text = self._text[:hit]
            self.stopped = True
            return self._release(len(self._text))
        return self._release(len(self._text) - self._hold)

    def finish(self) -> str:
        return self._release(len(self._text))

    def _release(self, upto: int) -> str:
        if upto <= self._shown:
            return ""
        out = self._text[self._shown : upto]
        self._shown = upto
        return out
