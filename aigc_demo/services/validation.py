"""Early, explicit input checks (diffusers style): name the value and the limit."""

from __future__ import annotations

import math
import random

from aigc_demo.errors import InvalidInput

MAX_SEED = 2**32 - 1


def clean_text(value: object, *, name: str, max_chars: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, got {type(value).__name__}")
    # NUL bytes break tokenizers and log files; they are never meaningful input.
    text = value.replace("\x00", "").strip()
    if required and not text:
        raise InvalidInput(f"{name} is empty: type something first.")
    if len(text) > max_chars:
        raise InvalidInput(f"{name} is {len(text)} characters long; the limit is {max_chars}.")
    return text


def number(value: object, *, name: str, lo: float, hi: float, integer: bool = False) -> float:
    try:
        num = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {str(value)[:30]!r}") from None
    if not math.isfinite(num):
        raise InvalidInput(f"{name} must be a finite number, got {num}")
    if integer and num != int(num):
        raise InvalidInput(f"{name} must be a whole number, got {num}")
    if not lo <= num <= hi:
        shown = int(num) if integer else num
        raise InvalidInput(f"{name} must be between {lo:g} and {hi:g}, got {shown}")
    return int(num) if integer else num


def resolve_seed(seed: object) -> int:
    """-1 (or empty) means random; the seed actually used is returned and recorded."""
    if seed is None or seed == "":
        seed = -1
    value = int(number(seed, name="seed", lo=-1, hi=MAX_SEED, integer=True))
    return random.randint(0, MAX_SEED) if value == -1 else value
