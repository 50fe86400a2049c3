"""Early, explicit input checks (diffusers style): name the value and the limit."""

from __future__ import annotations

import math
import random
import unicodedata

from aigc_demo.errors import InvalidInput, Term

MAX_SEED = 2**32 - 1


def choice(value: object, *, name: str, default: str) -> str:
    """A name picked from a list (preset, mode, model, style): text, or empty for ``default``."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidInput("value_not_text", name=Term(name), got=type(value).__name__)
    return value.strip() or default


def valid_unicode(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (``\ud800`` from a JSON escape) replaced by U+FFFD:
    they cannot be written as UTF-8, so a record holding one could not be stored."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def visible(text: str) -> bool:
    """Does ``text`` hold a character that shows? Zero-width spaces, joiners and other format
    characters (Unicode category Cf) alone are an empty prompt, though ``str.strip`` keeps them."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def clean_text(value: object, *, name: str, max_chars: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("value_not_text", name=Term(name), got=type(value).__name__)
    # NUL bytes break tokenizers and log files; they are never meaningful input.
    text = valid_unicode(value).replace("\x00", "").strip()
    if required and not visible(text):
        raise InvalidInput("value_empty", name=Term(name))
    if len(text) > max_chars:
        raise InvalidInput("value_too_long", name=Term(name), length=len(text), limit=max_chars)
    return text


def number(value: object, *, name: str, lo: float, hi: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput("value_not_number", name=Term(name), got=type(value).__name__)
    try:
        num = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        raise InvalidInput("value_not_number", name=Term(name), got=repr(str(value)[:30])) from None
    if not math.isfinite(num):
        raise InvalidInput("value_not_finite", name=Term(name), got=num)
    if integer and num != int(num):
        raise InvalidInput("value_not_whole", name=Term(name), got=num)
    if not lo <= num <= hi:
        shown = int(num) if integer else num
        raise InvalidInput("value_out_of_range", name=Term(name), lo=f"{lo:g}", hi=f"{hi:g}", got=shown)
    return int(num) if integer else num


def resolve_seed(seed: object) -> int:
    """-1 (or empty) means random; the seed actually used is returned and recorded."""
    if seed is None or seed == "":
        seed = -1
    value = int(number(seed, name="seed", lo=-1, hi=MAX_SEED, integer=True))
    return random.randint(0, MAX_SEED) if value == -1 else value


def clean_history(history: object, *, max_messages: int, max_item_chars: int) -> list[dict[str, str]]:
    """A conversation as ``[{role, content}]``, user and assistant turns only.

    Accepts Gradio's messages (content as text or as ``[{"type": "text", "text": ...}]``) and
    legacy ``[user, bot]`` pairs. Only the last ``max_messages`` are kept (the model's window
    would drop the oldest anyway); a single turn longer than ``max_item_chars`` is refused
    with a message, so one request cannot make the server read and store megabytes.
    """
    if history is None or history == "":
        return []
    if not isinstance(history, (list, tuple)):
        raise InvalidInput("history_not_list", got=type(history).__name__)
    messages: list[dict[str, str]] = []
    for item in list(history)[-max_messages * 2 :]:  # pairs count double; trimmed again below
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            messages.append({"role": str(item["role"]), "content": content if isinstance(content, str) else ""})
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            for role, content in zip(("user", "assistant"), item, strict=True):
                if isinstance(content, str) and content:
                    messages.append({"role": role, "content": content})
    messages = messages[-max_messages:]
    for m in messages:
        m["content"] = valid_unicode(m["content"]).replace("\x00", "")
        if len(m["content"]) > max_item_chars:
            raise InvalidInput("history_item_too_long", length=len(m["content"]), limit=max_item_chars)
    return messages
