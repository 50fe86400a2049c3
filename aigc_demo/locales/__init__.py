"""The message catalogue: one dict of messages per language, keys with named ``{fields}``.

Every sentence the app shows or writes for a person lives here — page labels, server-made
messages, errors — and each language is one module (``en.py``, ``zh.py``) holding
``MESSAGES``. The page hands the dicts to ``gr.I18n`` (``ui/i18n.py``); messages made on the
server are rendered by :func:`message` in the caller's language. Services and errors carry a
key and fields, never a finished sentence (``AigcError("prompt_too_long", limit=4000)``).

Adding a language: a module here with the same keys as ``en.py`` (``tests/ui/test_i18n.py``
walks every key of every locale), plus its name in :data:`LOCALES`. A key a locale lacks
falls back to English.
"""

from __future__ import annotations

from typing import Any

from aigc_demo.locales import en, zh

DEFAULT = "en"
# Language code → its messages; the first is the reference every other must match.
LOCALES: dict[str, dict[str, str]] = {"en": en.MESSAGES, "zh": zh.MESSAGES}


def has(key: str) -> bool:
    return key in LOCALES[DEFAULT]


def message(key: str, lang: str = DEFAULT, **fields: Any) -> str:
    """The message ``key`` in ``lang`` (English where that language lacks it), fields filled in."""
    text = LOCALES.get(lang, LOCALES[DEFAULT]).get(key)
    if text is None:
        text = LOCALES[DEFAULT][key]  # KeyError: an unknown key is a bug, not a user's problem
    return text.format(**fields)


def normalize_lang(value: str | None) -> str | None:
    """A supported language code from ``zh-CN``, ``en_US``, ``zh``…; None if none matches."""
    value = (value or "").strip().lower().replace("_", "-")
    if value in LOCALES:
        return value
    base = value.split("-")[0]
    return base if base in LOCALES else None
