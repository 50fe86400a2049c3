"""A/B variants: sticky, weighted assignment per session, recorded on every event and rating.

It sits beside ``config.py`` (it depends on ``errors`` only), so Settings can validate
``AIGC_VARIANTS`` at start without reaching up into the services.

``AIGC_VARIANTS`` is JSON, per tab a list of variants, each a name, a weight and the
options it overrides, e.g.::

    {"text": [{"name": "A", "weight": 1},
              {"name": "B", "weight": 1, "system": "Answer in one sentence.", "temperature": 0.3}]}

Assignment hashes (tab, session) onto the weights, so it is sticky without any storage —
the same participant gets the same variant on every request and after a restart — and
the split follows the weights across sessions. Services apply the overrides they know
(text: system, preset, model, temperature, top_p, max_new_tokens, mode; image: steps,
guidance_scale, style, negative_prompt; support: answer_mode, min_confidence).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aigc_demo.errors import SettingsError
from aigc_demo.tabs import tab_names

TABS = tab_names(variants=True)


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_variants(raw: str) -> dict[str, list[Variant]]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"AIGC_VARIANTS is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, dict) or any(tab not in TABS for tab in data):
        raise SettingsError(f"AIGC_VARIANTS must map tabs ({', '.join(TABS)}) to lists of variants")
    out: dict[str, list[Variant]] = {}
    for tab, items in data.items():
        if not isinstance(items, list) or not items:
            raise SettingsError(f"AIGC_VARIANTS[{tab!r}] must be a non-empty list")
        variants = []
        for item in items:
            if not isinstance(item, dict) or not str(item.get("name", "")).strip():
                raise SettingsError(f"each variant in AIGC_VARIANTS[{tab!r}] needs a name")
            weight = item.get("weight", 1)
            if not isinstance(weight, (int, float)) or weight <= 0:
                raise SettingsError(f"variant {item['name']!r}: weight must be a positive number, got {weight!r}")
            overrides = {k: v for k, v in item.items() if k not in ("name", "weight")}
            variants.append(Variant(str(item["name"]), float(weight), overrides))
        if len({v.name for v in variants}) != len(variants):
            raise SettingsError(f"AIGC_VARIANTS[{tab!r}] has duplicate names")
        out[tab] = variants
    return out


def assign(variants: dict[str, list[Variant]], tab: str, session: str) -> Variant | None:
    options = variants.get(tab)
    if not options or not session:
        return None
    digest = hashlib.sha256(f"{tab}:{session}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v.weight for v in options)
    for variant in options:
        point -= variant.weight
        if point < 0:
            return variant
    return options[-1]


def apply(variant: Variant | None, options: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Options with the variant's overrides for the keys this service understands."""
    if variant is None:
        return options
    return {**options, **{k: v for k, v in variant.overrides.items() if k in allowed}}
