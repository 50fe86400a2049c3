"""Both languages for every UI string, and the language of one request."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput
from aigc_demo.services.validation import clean_text, number
from aigc_demo.ui.i18n import I18N, STRINGS, T, lang_of, tr

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_string_has_english_and_chinese():
    for key, (en, zh) in STRINGS.items():
        assert "." not in key, key  # the front end reads dots as nested keys
        assert en.strip() and zh.strip(), key
        assert not CJK.search(en), key
        if key not in ("top_p", "col_up", "col_down"):  # a few terms and symbols stay as they are
            assert CJK.search(zh), key
        # The same {fields} in both, so tr() can fill either.
        assert set(re.findall(r"{(\w+)", en)) == set(re.findall(r"{(\w+)", zh)), key
    assert set(I18N.translations_dict) >= {"en", "zh"}


def test_unknown_keys_fail_at_build_time():
    with pytest.raises(KeyError, match="no UI string"):
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
    """Errors a visitor can trigger (services, ratings, UI) carry ``zh=``; operator-only ones
    (settings, model loading, CLI exports) are English."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "aigc_demo"
    user_facing = {"InvalidInput", "NotFound", "StorageError", "AigcError"}
    operator_only = {root / "feedback" / "export.py", root / "config.py", root / "__main__.py"}
    missing = []
    for path in root.rglob("*.py"):
        if path in operator_only:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None)
                if name in user_facing and not any(k.arg == "zh" for k in node.exc.keywords):
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
