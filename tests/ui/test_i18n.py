"""Both languages for every UI string, and the language of one request."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from aigc_demo import locales
from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput
from aigc_demo.locales import LOCALES
from aigc_demo.services.validation import clean_text, number
from aigc_demo.ui.i18n import I18N, T, lang_of, tr
from tests.helpers import ROOT

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_locale_has_every_key_with_the_same_fields():
    reference = LOCALES["en"]
    for lang, messages in LOCALES.items():
        assert set(messages) == set(reference), (lang, set(messages) ^ set(reference))
        for key, text in messages.items():
            assert text.strip(), (lang, key)
            # No {field} the English lacks, so a message fills in any language (it may leave one out).
            assert set(re.findall(r"{(\w+)", text)) <= set(re.findall(r"{(\w+)", reference[key])), (lang, key)


def test_every_string_has_english_and_chinese():
    for key, en in LOCALES["en"].items():
        zh = LOCALES["zh"][key]
        assert "." not in key, key  # the front end reads dots as nested keys
        assert en.strip() and zh.strip(), key
        assert not CJK.search(en), key
        # A few terms and symbols stay as they are.
        if key not in ("top_p", "col_up", "col_down", "name_top_p", "list_separator", "list_separator_clause"):
            assert CJK.search(zh), key
    assert set(I18N.translations_dict) >= {"en", "zh"}


def test_a_third_language_is_one_dict(monkeypatch):
    # Issue 27: adding a language is one module in aigc_demo/locales; a stub one, made from
    # English, reaches the page's strings, server messages, errors and the request's language.
    stub = {key: "[xx] " + text for key, text in LOCALES["en"].items()}
    monkeypatch.setitem(LOCALES, "xx", stub)
    for key, text in LOCALES["en"].items():
        if re.search(r"{\d", text):  # Gradio's own strings: {1} is filled in the page (assets/lang.js)
            continue
        fields = {name: 1 for name in re.findall(r"{(\w+)", text)}
        assert locales.message(key, "xx", **fields).startswith("[xx] "), key
    with pytest.raises(InvalidInput) as err:
        clean_text("", name="prompt", max_chars=10)
    assert err.value.localized("xx") == "[xx] [xx] prompt is empty: type something first."
    assert lang_of(_request({"lang": "xx"})) == "xx" and lang_of(_request({}, "xx-YY,en;q=0.5")) == "xx"
    del stub["rows_exported"]  # a key the new language has not translated yet reads in English
    assert locales.message("rows_exported", "xx", n=2) == "2 rows exported"


def test_unknown_keys_fail_at_build_time():
    with pytest.raises(KeyError, match="no message"):
        T("no_such_key")


def _request(query=None, accept=""):
    return SimpleNamespace(query_params=query or {}, headers={"accept-language": accept} if accept else {})


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ({"lang": "zh"}, "en-US,en;q=0.9", "zh"),  # the switch wins over the browser
        ({"lang": "en"}, "zh-CN,zh;q=0.9", "en"),
        ({}, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ({}, "fr-FR,fr;q=0.9,zh-TW;q=0.8", "zh"),  # first supported language
        ({}, "fr-FR", "en"),
        ({"lang": "de"}, "", "en"),
    ],
)
def test_language_of_a_request(query, accept, expected):
    assert lang_of(_request(query, accept)) == expected


def test_no_request_means_english():
    assert lang_of(None) == "en"


def test_messages_are_filled_in_either_language():
    assert tr("rows_exported", "en", n=3) == "3 rows exported"
    assert tr("rows_exported", "zh", n=3) == "已导出 3 行"
    assert tr("step_n", "zh", step=2, total=4) == "第 2/4 步"


def test_validation_errors_carry_chinese():
    with pytest.raises(InvalidInput) as err:
        clean_text("", name="prompt", max_chars=10)
    assert err.value.localized("en") == "prompt is empty: type something first."
    assert err.value.localized("zh") == "提示词为空：请先输入内容。"
    with pytest.raises(InvalidInput) as err:
        number(99, name="steps", lo=1, hi=50, integer=True)
    assert "步数" in err.value.localized("zh") and "50" in err.value.localized("zh")


def test_a_space_listens_on_every_interface(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    assert Settings().host == "127.0.0.1"
    monkeypatch.setenv("SPACE_ID", "someone/aigc-demo")
    assert Settings().host == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "10.0.0.5")
    assert Settings().host == "10.0.0.5"
    monkeypatch.setenv("AIGC_HOST", "127.0.0.1")
    assert Settings().host == "127.0.0.1"


def test_every_user_facing_error_has_chinese():
    """Errors a visitor can trigger (services, ratings, UI) carry a catalogue key (or, not yet
    moved to the catalogue, ``zh=``); operator-only ones (settings, model loading, CLI exports)
    are English."""
    import ast

    root = ROOT / "aigc_demo"
    user_facing = {"InvalidInput", "NotFound", "StorageError", "AigcError"}
    operator_only = {root / "feedback" / "export.py", root / "config.py", root / "__main__.py"}
    missing = []
    for path in root.rglob("*.py"):
        if path in operator_only:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None)
                first = node.exc.args[0] if node.exc.args else None
                keyed = isinstance(first, ast.Constant) and isinstance(first.value, str) and locales.has(first.value)
                if name in user_facing and not keyed and not any(k.arg == "zh" for k in node.exc.keywords):
                    missing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not missing, missing


def test_a_queue_request_takes_the_pages_language_from_its_referer():
    from aigc_demo.ui.admission import page_language

    page = SimpleNamespace(
        query_params={},
        headers={"referer": "http://127.0.0.1:7860/?session=ux-1&lang=zh", "accept-language": "en-US"},
    )
    assert lang_of(page) == page_language(page) == "zh"
    # "lang=zh" inside another parameter is not the page's language.
    other = SimpleNamespace(query_params={}, headers={"referer": "http://h/?q=lang=zh", "accept-language": "en"})
    assert lang_of(other) == "en"
    # An API client (no page, no Referer) gets both languages.
    assert page_language(SimpleNamespace(query_params={}, headers={})) is None
