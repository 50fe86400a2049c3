"""The one user-facing error type.

Services raise :class:`AigcError` with a message key (aigc_demo/locales) that tells the user
how to fix the problem; the UI turns it into ``gr.Error`` in the caller's language at the
edge. Anything else is a bug: it is logged with its traceback and the user sees a generic
message, never the traceback.
"""

from __future__ import annotations

from typing import Any

from aigc_demo.locales import DEFAULT, has, message


class Term:
    """A word inside a message that is itself translated (a field's name): the catalogue's
    ``name_<name>`` where it has one, else the name as written."""

    def __init__(self, name: str) -> None:
        self.name = name

    def localized(self, lang: str) -> str:
        key = "name_" + "_".join(self.name.split())
        return message(key, lang) if has(key) else self.name

    def __str__(self) -> str:
        return self.localized(DEFAULT)


class Msg:
    """A catalogue message used inside another one (why a write failed, inside "not saved: …")."""

    def __init__(self, key: str, **fields: Any) -> None:
        self.key, self.fields = key, fields

    def localized(self, lang: str) -> str:
        return message(self.key, lang, **_shown(self.fields, lang))


class Items:
    """A list inside a message, joined as each language writes lists ("a, b" / "a、b"); an item
    that has a language of its own (a KB problem, a Msg) is shown in the message's."""

    def __init__(self, items: Any, *, separator: str = "list_separator") -> None:
        self.items, self.separator = list(items), separator

    def localized(self, lang: str) -> str:
        return message(self.separator, lang).join(str(_in_language(i, lang)) for i in self.items)


def _in_language(value: Any, lang: str) -> Any:
    """A Term, Msg, Items, AigcError or KB problem in ``lang``; any other value as it is."""
    if hasattr(value, "localized"):
        return value.localized(lang)
    return value.in_language(lang) if hasattr(value, "in_language") else value


def _shown(fields: dict[str, Any], lang: str) -> dict[str, Any]:
    return {k: _in_language(v, lang) for k, v in fields.items()}


class AigcError(Exception):
    """An error whose message is safe and useful to show to the user.

    Raised with a catalogue key and its fields — ``InvalidInput("value_empty", name=Term("prompt"))``
    — and rendered in the caller's language at the edge (``localized``). Text that is no
    message of ours (a remote server's own words) may be passed as it is, with ``zh=`` for a
    Chinese page.
    """

    def __init__(self, text: str, *, zh: str | None = None, **fields: Any) -> None:
        self.key = text if has(text) else None
        self.fields = fields
        self.message = self.localized(DEFAULT) if self.key else text
        self.zh = zh
        super().__init__(self.message)

    def localized(self, lang: str) -> str:
        if self.key is not None:
            return message(self.key, lang, **_shown(self.fields, lang))
        return self.zh if lang == "zh" and self.zh else self.message


class InvalidInput(AigcError):
    """A request value is out of range or malformed; nothing was done."""


class SettingsError(AigcError):
    """A setting (environment variable) has a bad value; the app cannot start."""


class ModelLoadError(AigcError):
    """A model could not be loaded; only the tab that needs it is affected."""


class NotFound(AigcError):
    """An id (output, record) that the app does not know."""


class StorageError(AigcError):
    """A record could not be made durable (write or fsync failed)."""
