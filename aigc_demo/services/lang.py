"""Language helpers shared by the services (kept tiny on purpose)."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def contains_cjk(text: str) -> bool:
    """Does the text contain Chinese (CJK ideographs)? Picks zh templates and answers."""
    return bool(CJK.search(text))


def main_script(text: str) -> str:
    """zh when Han characters are at least a third of the text's letters, else en: the language
    a text is *written* in ("Electronic invoices (普通发票) are emailed" is English)."""
    han = len(_HAN.findall(text))
    return "zh" if han and han * 2 >= len(_LATIN.findall(text)) else "en"


def is_chinese(text: str) -> bool:
    """Written in Chinese (by its main script): "Can I get an invoice (发票)?" is English."""
    return main_script(text) == "zh"
