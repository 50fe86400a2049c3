"""The README's settings table, generated from :class:`aigc_demo.config.Settings`.

    python -m aigc_demo.settings_doc --check README.md   # exit 1 when the table is out of date
    python -m aigc_demo.settings_doc --write README.md   # regenerate it

One row per field, in declaration order: the environment variable, the default and the
field's docstring. The table sits between two marker comments in the README.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from aigc_demo.config import PROFILE_DEFAULTS, PROFILE_TEXT_CHOICES, Settings

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
HEADER = "| variable | default | meaning |\n|---|---|---|"
REPO_ROOT = Path(__file__).resolve().parent.parent

# Fields left out of the table because they are not for users: none today.
INTERNAL: frozenset[str] = frozenset()

# Fields whose empty default means "the profile's choice": each profile's value is shown.
PROFILE_VALUES: dict[str, dict[str, list[str]]] = {
    **{name: {p: [models[name]] for p, models in PROFILE_DEFAULTS.items()} for name in PROFILE_DEFAULTS["offline"]},
    "text_models": PROFILE_TEXT_CHOICES,
}


def _cell(text: str) -> str:
    """One table cell: a single line, with pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def env_name(model: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The variable that sets a field: its first alias, else the prefix and the name."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


def default_text(name: str, field: FieldInfo) -> str:
    """The default as a reader wants it: code for values, a description for computed ones."""
    if field.default_factory is not None:
        doc = inspect.getdoc(field.default_factory)
        if not doc:
            raise ValueError(f"{name}: its default factory needs a docstring that says the default")
        return doc.split("\n\n")[0]
    if field.is_required():
        return "required"
    value: Any = field.default
    if isinstance(value, SecretStr):
        return "(hidden)" if value.get_secret_value() else "empty"
    if value is None:
        return "unset"
    if isinstance(value, str) and not value:
        if name in PROFILE_VALUES:
            per_profile = (f"{p}: " + ", ".join(f"`{v}`" for v in vs) for p, vs in PROFILE_VALUES[name].items())
            return f"empty ({'; '.join(per_profile)})"
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(REPO_ROOT):
        value = value.relative_to(REPO_ROOT).as_posix()
    return f"`{value}`"


def settings_table(model: type[BaseSettings] = Settings) -> str:
    """The Markdown table of ``model``'s variables (no trailing newline)."""
    rows = [HEADER]
    for name, field in model.model_fields.items():
        if name in INTERNAL:
            continue
        if not field.description:
            raise ValueError(f"{model.__name__}.{name} has no docstring: write one under the field")
        env = env_name(model, name, field)
        rows.append(f"| `{env}` | {_cell(default_text(name, field))} | {_cell(field.description)} |")
    return "\n".join(rows)


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"needs one {START} line followed by one {END} line")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(lambda _: f"{START}\n{table}\n{END}", text)  # a function: no escapes in table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aigc_demo.settings_doc", description="Check or rewrite the README's settings table."
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if the file's settings table is out of date")
    mode.add_argument("--write", action="store_true", help="rewrite the file's settings table")
    parser.add_argument("path", type=Path, help="the Markdown file, e.g. README.md")
    args = parser.parse_args(argv)

    text = args.path.read_text(encoding="utf-8")
    try:
        updated = replace_table(text, settings_table())
    except ValueError as exc:
        print(f"{args.path}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != text:
            print(
                f"{args.path}: the settings table differs from aigc_demo/config.py; "
                f"run `python -m aigc_demo.settings_doc --write {args.path}`",
                file=sys.stderr,
            )
            return 1
        return 0
    if updated != text:
        args.path.write_text(updated, encoding="utf-8")
        print(f"{args.path}: settings table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
