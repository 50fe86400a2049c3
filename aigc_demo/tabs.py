"""The app's tabs in one table: everything that lists tabs reads it.

A tab's ``name`` is its ``gr.Tab`` id, the ``tab`` field of the records it writes and the
suffix of its i18n keys (``tab_<name>``; ``filter_<name>`` for a rated tab). The page
(``ui/demo.py``) builds the tabs in this order, each from ``aigc_demo/ui/tabs/<name>.py``,
whose ``build(services, examples)`` lays the tab out and wires it.

Adding a tab: one line here, its module in ``ui/tabs/`` and its i18n keys. The rest follows:
the A/B variants it accepts (``AIGC_VARIANTS``), the Insights tab filter and 👍/👎
coverage, the CLI's ``--tab`` choices and which ratings become chat training rows.

This module imports nothing of the app, so config, feedback and services can all read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tab:
    name: str
    records: bool = True
    """It writes records (outputs, votes) with ``tab=name``: the exports' ``--tab`` choices."""
    rated: bool = False
    """Its outputs take 👍/👎: the Insights tab filter and the rating coverage count them."""
    variants: bool = False
    """``AIGC_VARIANTS`` may override its parameters (A/B tests)."""
    chat_data: bool = False
    """Its rated text outputs become SFT / DPO / KTO chat rows."""


TABS: tuple[Tab, ...] = (
    Tab("text", rated=True, variants=True, chat_data=True),
    Tab("image", rated=True, variants=True),
    Tab("support", rated=True, variants=True, chat_data=True),
    Tab("arena"),  # judged by pairwise votes, not 👍/👎
    Tab("insights", records=False),
)


def tab_names(
    *, records: bool = False, rated: bool = False, variants: bool = False, chat_data: bool = False
) -> tuple[str, ...]:
    """Names of the tabs that have every property asked for (all tabs when none is)."""
    return tuple(
        t.name
        for t in TABS
        if (not records or t.records)
        and (not rated or t.rated)
        and (not variants or t.variants)
        and (not chat_data or t.chat_data)
    )
