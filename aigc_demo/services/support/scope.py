"""Is a message for this knowledge base at all? Nearer a general request than any entry → no.

Phrase rules ("你好", "谢谢") catch the commonest small talk; a request to write a poem, for
the weather or for code comes in endless wordings, and a low-confidence search would give
it a human ticket (or a random entry). Here each message that the search could not answer
is compared, by the same embedder, with a few general requests written once for every
deployment: when one of them is nearer than every entry of *this* KB, the message is small
talk or out of scope and gets a polite reply that says what the bot can do — no ticket.
It compares with the KB itself, so it needs no threshold fitted per KB.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

# General requests a support bot meets on any site, in both languages; not tied to any KB.
PROTOTYPES: dict[str, list[str]] = {
    "small-talk": [
        "你好",
        "早上好",
        "谢谢你，问题解决了",
        "好的，没有别的问题了，再见",
        "你是机器人还是真人",
        "你叫什么名字",
        "你今天过得怎么样",
        "hello there",
        "thanks, that solved it",
        "are you a bot or a real person?",
        "how are you today?",
        "goodbye",
    ],
    "off-topic": [
        "明天会下雨吗，天气怎么样",
        "帮我写一首诗",
        "给我讲个笑话",
        "帮我写一段代码",
        "这段程序报错了怎么改",
        "推荐几只股票",
        "这道数学题怎么做",
        "帮我翻译这段话",
        "世界上最大的国家是哪个",
        "今天有什么新闻",
        "昨晚的球赛谁赢了",
        "红烧肉怎么做",
        "what's the weather like tomorrow?",
        "write me a poem",
        "tell me a joke",
        "write a Python function for me",
        "help me with my homework",
        "who won the game last night?",
        "what is the capital of France?",
        "give me a recipe for dinner",
    ],
}


class ScopeGuard:
    """The prototype vectors of one embedder, made once, and the test against a KB."""

    def __init__(self) -> None:
        self._vectors: dict[int, tuple[np.ndarray, list[str]]] = {}
        self._lock = threading.Lock()

    def _prototypes(self, embedder: Any) -> tuple[np.ndarray, list[str]]:
        key = id(embedder)
        with self._lock:
            if key not in self._vectors:
                kinds = [kind for kind, texts in PROTOTYPES.items() for _ in texts]
                texts = [text for group in PROTOTYPES.values() for text in group]
                self._vectors[key] = (np.asarray(embedder.embed(texts), dtype=np.float32), kinds)
            return self._vectors[key]

    def kind(self, vector: np.ndarray, entry_vectors: np.ndarray, embedder: Any) -> str | None:
        """``"small-talk"`` or ``"off-topic"`` when a general request is nearer ``vector`` than
        every entry; None when some entry is at least as near (then it is the KB's business)."""
        if not len(entry_vectors) or not embedder.multilingual:
            return None  # an English-only embedder cannot judge Chinese small talk: no opinion
        prototypes, kinds = self._prototypes(embedder)
        near = prototypes @ vector
        best = int(near.argmax())
        return kinds[best] if float(near[best]) > float((entry_vectors @ vector).max()) else None
