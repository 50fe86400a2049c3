"""One table of tabs (aigc_demo/tabs.py): the page, variants, Insights, exports and the CLI read it."""

from __future__ import annotations

import importlib

import gradio as gr
import pytest

from aigc_demo import variants
from aigc_demo.feedback import export, insights
from aigc_demo.locales import LOCALES
from aigc_demo.tabs import TABS, tab_names


def test_every_tab_has_its_module_and_its_words_in_both_languages():
    for tab in TABS:
        module = importlib.import_module(f"aigc_demo.ui.tabs.{tab.name}")
        assert callable(module.build), tab.name
        keys = [f"tab_{tab.name}"] + ([f"filter_{tab.name}"] if tab.rated else [])
        for key in keys:
            en, zh = LOCALES["en"][key], LOCALES["zh"][key]
            assert en and zh and en != zh, key


def test_the_page_builds_the_tabs_of_the_table_in_order(settings, fake_registry):
    from aigc_demo.ui.demo import create_demo

    demo = create_demo(settings, registry=fake_registry)
    ids = [block.id for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert ids == [t.name for t in TABS] == ["text", "image", "support", "arena", "insights"]


def test_readers_take_their_tabs_from_the_table():
    assert variants.TABS == tab_names(variants=True) == ("text", "image", "support")
    assert set(export.TEXT_TABS) == {"text", "support"}
    assert insights.RATED_TABS == ("text", "image", "support")  # arena is judged by votes
    assert "insights" not in tab_names(records=True) and "arena" in tab_names(records=True)


def test_the_cli_offers_the_recording_tabs(capsys):
    from aigc_demo.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    assert "{text,image,support,arena}" in capsys.readouterr().out


def test_variants_for_a_tab_without_them_are_refused():

    from aigc_demo.errors import SettingsError

    with pytest.raises(SettingsError, match="text, image, support"):
        variants.parse_variants('{"arena": [{"name": "a"}]}')


def test_a_new_tab_is_one_table_line_one_module_and_its_words(settings, fake_registry, monkeypatch):
    """Worked example of README's "Add a tab": a "notes" tab that echoes what is typed."""
    import sys
    import types

    from aigc_demo import tabs
    from aigc_demo.ui import demo as page
    from aigc_demo.ui.tabs.base import QUICK, Updates

    # 1. The module aigc_demo/ui/tabs/notes.py: its class and build().
    class NotesTab:
        def __init__(self, services) -> None:
            self.services = services
            self.box = gr.Textbox(elem_id="notes-box")
            self.echo = gr.Markdown(elem_id="notes-echo")
            self.box.submit(self.shout, [self.box], [self.echo], **QUICK)

        def shout(self, text: str) -> Updates:
            return {self.echo: text.upper()}

    built: list[NotesTab] = []
    module = types.ModuleType("aigc_demo.ui.tabs.notes")
    module.build = lambda services, examples: built.append(NotesTab(services))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # 2. One line in aigc_demo/tabs.py (this tab records nothing).
    monkeypatch.setattr(page, "TABS", (*tabs.TABS, tabs.Tab("notes", records=False)))
    # 3. Its words in each locale.
    monkeypatch.setitem(LOCALES["en"], "tab_notes", "Notes")
    monkeypatch.setitem(LOCALES["zh"], "tab_notes", "笔记")

    demo = page.create_demo(settings, registry=fake_registry)
    ids = [block.id for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert ids == [*(t.name for t in TABS), "notes"]
    (tab,) = built
    assert tab.shout("你好 hi") == {tab.echo: "你好 HI"}
    handler = next(fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "shout")
    assert [o._id for o in handler.outputs] == [tab.echo._id] and handler.api_visibility == "private"
