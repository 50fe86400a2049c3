"""How often a streamed answer updates the page (shared by the Text and Arena tabs and the API).

Coalesce tokens: ~12 UI updates/s look smooth, and each update re-sends the whole text, so
fewer updates keep the serving overhead small (bench/text_stream.py measures it). With many
answers streaming at once the updates share the same two cores as the model, so the interval
grows with the number of streams (10 streams: ~3 updates/s each).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STREAM_INTERVAL_S = 0.08


class Pacer:
    """How often one stream may update, given how many stream now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0

    @contextmanager
    def stream(self) -> Iterator[Callable[..., bool]]:
        with self._lock:
            self.active += 1
        last = [0.0]

        def due(first: bool = False) -> bool:
            now = time.monotonic()
            if first or now - last[0] >= STREAM_INTERVAL_S * max(1.0, self.active / 3):
                last[0] = now
                return True
            return False

        try:
            yield due
        finally:
            with self._lock:
                self.active -= 1


PACER = Pacer()
