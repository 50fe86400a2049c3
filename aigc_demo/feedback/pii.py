"""Scrub personal data from records before they are written (on by default).

Test participants type real emails, phone numbers and sometimes tokens into prompts
and comments; the ratings file is meant to be shared with the team and pushed to a
dataset, so these are replaced by placeholders *before* the first byte hits the disk.
Patterns cover emails, phone numbers (mainland-China mobiles and landlines,
international ``+CC`` numbers, North-American formats), Hugging Face / OpenAI-style
API tokens, and card-like digit runs that pass the Luhn check. It is a safety net,
not a guarantee: names and addresses are not detected.
"""

from __future__ import annotations

import re
from typing import Any

# Every repeat is bounded (RFC 5321: local part ≤ 64, domain ≤ 255), so one match attempt
# costs at most a few hundred steps and a scrub is linear in the text: an unbounded ``+``
# before "@" made a 40,000-character run without "@" take seconds (each start position
# scanned the whole run). Runs longer than a bound are still caught at their tail.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}")
TOKEN = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,512}|sk-(?:proj-)?[A-Za-z0-9_-]{20,512}|gh[pousr]_[A-Za-z0-9]{20,512}|AKIA[0-9A-Z]{16}"
    r"|xox[baprs]-[A-Za-z0-9-]{10,512})"
)
# Not inside a longer token: a hex id (83492b57454c4037813029748…) holds digit runs that
# pass the Luhn check. ASCII letters only, so 卡号6222… right after Chinese text still counts.
CARD = re.compile(r"(?<![0-9A-Za-z-])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z-])")
PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?!(?:400|800)-)(?:"  # 400-/800- are businesses' toll-free lines
    r"\+\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}"  # +44 20 7946 0958, +86 138 0013 8000
    r"|1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}"  # CN mobile 13800138000 / 138-0013-8000
    r"|0\d{2,3}-\d{7,8}"  # CN landline 010-12345678
    r"|\(\d{3}\)\s?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}"  # North America
    r")(?![0-9A-Za-z])"
)

# Fields that hold ids, hashes, paths or knowledge-base text, never user PII.
SKIP_KEYS = frozenset(
    {"id", "output_id", "record_id", "session_id", "ts", "sha256", "path", "model", "sources", "seq", "crc", "url"}
    # ids that point at other records
    | {"continued_from", "pair_id", "idempotency_key", "ticket", "verified_from", "kb_entry"}
)


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def scrub_text(text: str) -> str:
    text = TOKEN.sub("[TOKEN]", text)
    text = EMAIL.sub("[EMAIL]", text)
    text = CARD.sub(_card, text)
    return PHONE.sub("[PHONE]", text)


def scrub(value: Any, *, key: str | None = None) -> Any:
    """A copy of ``value`` with PII replaced in every string, except under SKIP_KEYS."""
    if key in SKIP_KEYS:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: scrub(v, key=k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key=key) for v in value]
    return value
