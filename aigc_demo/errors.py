"""The one user-facing error type.

Services raise :class:`AigcError` with a message that tells the user how to fix the
problem; the UI turns it into ``gr.Error`` at the edge. Anything else is a bug: it is
logged with its traceback and the user sees a generic message, never the traceback.
"""

from __future__ import annotations


class AigcError(Exception):
    """An error whose message is safe and useful to show to the user."""

    def __init__(self, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh  # the same message in Chinese, for a zh page (ui/i18n.py)

    def localized(self, lang: str) -> str:
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
