"""Language helpers shared by the services (kept tiny on purpose)."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def contains_cjk(text: str) -> bool:
    """Does the text contain Chinese (CJK ideographs)? Picks zh templates and answers."""
    return bool(CJK.search(text))
