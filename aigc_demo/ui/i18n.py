"""The catalogue's messages on the page: ``gr.I18n`` for the page, ``tr`` for messages.

Static text (labels, buttons, placeholders, headings) is an ``I18nData`` key that the
browser translates: Gradio picks the locale from ``navigator.language``. The header's
language switch reloads the page with ``?lang=zh`` / ``?lang=en`` (remembered in
localStorage); ``assets/lang.js``, in the page head, makes ``navigator.language`` say
that before Gradio reads it. Text made on the server for one request (rating status,
stats lines, warnings) is translated by :func:`tr` in the language of :func:`lang_of`:
the ``lang`` URL parameter, else the browser's ``Accept-Language``.

Keys are snake_case words (no dots: the front end would read them as nested paths).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import gradio as gr

from aigc_demo.locales import LOCALES, has, message, normalize_lang

__all__ = ["I18N", "T", "has", "lang_of", "normalize_lang", "tr"]

# The page's strings come from the message catalogue (aigc_demo/locales), one dict per language.
I18N = gr.I18n(**LOCALES)


def T(key: str) -> Any:
    """A page string, translated in the browser."""
    if not has(key):
        raise KeyError(f"no message {key!r} in aigc_demo/locales/en.py")
    return I18N(key)


def lang_of(request: Any) -> str:
    """The language of one request: ``?lang=`` of the request or of the page that sent it
    (the Referer: a queue-join request does not carry the page's parameters), else the
    first supported Accept-Language."""
    if request is None:
        return "en"
    try:
        headers = dict(request.headers)
        referer = parse_qs(urlsplit(headers.get("referer", "")).query)
        chosen = normalize_lang(dict(request.query_params).get("lang") or (referer.get("lang") or [""])[0])
        if chosen:
            return chosen
        header = headers.get("accept-language", "")
    except Exception:  # noqa: BLE001 - a request without those parts
        return "en"
    for part in header.split(","):
        chosen = normalize_lang(part.split(";")[0])
        if chosen:
            return chosen
    return "en"


def table(rows: list[list[Any]], columns: list[str], lang: str) -> Any:
    """A Dataframe value whose column headers are in ``lang`` (keys ``col_<name>``)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=[tr(f"col_{c}", lang) for c in columns])


def label(prefix: str, name: str) -> Any:
    """A choice label: translated if the name is a known one (``style_Watercolor``), else as written."""
    return T(f"{prefix}_{name}") if has(f"{prefix}_{name}") else name


# Packaged text models (ids without an engine prefix) → their name's key above.
MODEL_LABELS = {
    "packaged:qwen2.5-coder-0.5b-instruct": "model_qwen_coder_05b",
    "packaged:smollm2-135m-instruct": "model_smollm2_135m",
    "packaged:gemma3-270m": "model_gemma3_270m",
}


def model_label(model_id: str) -> Any:
    """A text model's name for a dropdown: a human name for a packaged one; any other id (a Hub
    id, one with an explicit engine prefix) as it is, so two engines of one model stay apart."""
    key = MODEL_LABELS.get(model_id)
    return T(key) if key else model_id


def is_small_model(model_id: str) -> bool:
    """The packaged models are all small enough that a note on their limits is owed."""
    return any(model_id.endswith(known) for known in MODEL_LABELS)


def tr(key: str, lang: str = "en", **fields: Any) -> str:
    """A server-made message in ``lang``, with ``fields`` filled in (see aigc_demo/locales)."""
    return message(key, lang, **fields)
