from __future__ import annotations

from typing import Literal, get_args, get_origin

import pytest
from pydantic import Field

from aigc_demo.config import Settings
from aigc_demo.settings_doc import END, START, main, replace_table, settings_table
from tests.helpers import ROOT

README = ROOT / "README.md"


def _readme_table(text: str) -> str:
    return text[text.index(START) + len(START) : text.index(END)].strip("\n")


def test_readme_table_is_the_generated_one():
    # On failure: python -m aigc_demo.settings_doc --write README.md
    assert _readme_table(README.read_text(encoding="utf-8")) == settings_table()
    assert main(["--check", str(README)]) == 0


def test_every_field_has_a_row_in_declaration_order():
    rows = settings_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [f"AIGC_{name.upper()}" for name in Settings.model_fields]
    assert all(row.count(" | ") == 2 for row in rows)  # three cells: no unescaped pipe in a cell


def test_literal_choices_are_named_in_the_description():
    for name, field in Settings.model_fields.items():
        if get_origin(field.annotation) is Literal:
            for choice in get_args(field.annotation):
                assert f"`{choice}`" in (field.description or ""), f"{name}: `{choice}` is not described"


def test_a_new_field_gets_a_row():
    class Extended(Settings):
        new_knob: int = Field(7, ge=1)
        """A knob | added at test time."""

        empty_knob: str = ""
        """Another one."""

    table = settings_table(Extended)
    assert table.splitlines()[-2] == r"| `AIGC_NEW_KNOB` | `7` | A knob \| added at test time. |"
    assert table.splitlines()[-1] == "| `AIGC_EMPTY_KNOB` | empty | Another one. |"
    assert "AIGC_NEW_KNOB" not in settings_table()


def test_a_field_without_a_docstring_is_refused():
    class Undocumented(Settings):
        silent_knob: int = 1

    with pytest.raises(ValueError, match="silent_knob has no docstring"):
        settings_table(Undocumented)


def test_defaults_are_readable():
    rows = {row.split("`")[1]: row for row in settings_table().splitlines()[2:]}
    assert "| `assets/kb` |" in rows["AIGC_SUPPORT_KB"]  # a path in the repository, relative
    assert "| `60` |" in rows["AIGC_OPENAI_TIMEOUT_S"]
    assert "| `true` |" in rows["AIGC_PRELOAD"]
    assert "`7860`" in rows["AIGC_PORT"]  # computed defaults say how they are computed
    assert "`stabilityai/sd-turbo`" in rows["AIGC_IMAGE_MODEL"]  # each profile's model


def test_check_fails_on_a_stale_copy_and_write_repairs_it(tmp_path, capsys):
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text(encoding="utf-8").replace("| `AIGC_PROFILE` |", "| `AIGC_PROFILE_X` |"))
    assert main(["--check", str(copy)]) == 1
    assert "settings table differs" in capsys.readouterr().err
    assert main(["--write", str(copy)]) == 0
    assert main(["--check", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")


def test_markers_are_required(tmp_path):
    copy = tmp_path / "README.md"
    copy.write_text("# no table here\n")
    assert main(["--check", str(copy)]) == 1
    with pytest.raises(ValueError, match="settings-table"):
        replace_table(f"{END}\n{START}\n", "| table |")
