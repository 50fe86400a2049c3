"""User-testing sessions: the code from the URL tags records; the report says what happened."""

from __future__ import annotations

from types import SimpleNamespace

from aigc_demo.feedback.report import session_report, to_html
from aigc_demo.ui.common import session_of
from tests.helpers import run_cli


def test_session_code_from_the_url_wins_and_is_sanitised():
    assert session_of(SimpleNamespace(query_params={"session": "ux-test_7"}, session_hash="h")) == "ux-test_7"
    assert session_of(SimpleNamespace(query_params={"session": "<script>"}, session_hash="h")) == "h"
    assert session_of(SimpleNamespace(query_params={}, session_hash="h")) == "h"
    assert session_of(None) == ""


def test_report_content(services, settings, tmp_path):
    fb = services.feedback
    t = services.text.generate("Write a slogan", session_id="ux1")
    services.text.generate("Another", session_id="ux1")
    s = services.support.chat("Do you sell spaceships?", session_id="ux1")
    services.text.generate("Other session", session_id="zz")
    fb.rate(t["output_id"], "down", "too generic | dull", reasons=["low quality"])
    fb.rate(s["output_id"], "up", "<b>polite</b>")
    md = session_report("ux1", fb.read("ratings").records, fb.read("events").records, fb.read("handoffs").records)
    assert "# Session report: ux1" in md
    assert "**3** generations, **2** rated outputs, like-rate **50%**" in md
    assert "| text | 2 | 1 | 0 | 1 | 0% |" in md
    assert "👎 (text) too generic \\| dull" in md
    assert "not\\_covered: Do you sell spaceships?" in md  # the code, Markdown-escaped, without a label
    assert "Other session" not in md
    page = to_html(md, "Session ux1")
    assert "<table>" in page and "<b>polite</b>" not in page and "&lt;b&gt;polite&lt;/b&gt;" in page
    empty = session_report("nobody", fb.read("ratings").records, fb.read("events").records, [])
    assert "No generations recorded" in empty


def test_the_report_speaks_the_page_language(services):
    """Issue 25.4: the session report was English with raw reason keys on a Chinese page."""
    fb = services.feedback
    t = services.text.generate("写一句口号", session_id="zh1")
    services.support.chat("你们卖火星飞船吗？", session_id="zh1")
    fb.rate(t["output_id"], "down", "太普通")
    labels = {"not_covered": "询问资料中没有的商品", "low_confidence": "知识库中没有"}
    md = session_report(
        "zh1",
        fb.read("ratings").records,
        fb.read("events").records,
        fb.read("handoffs").records,
        lang="zh",
        reason_label=lambda key: labels.get(key, key),
    )
    assert "# 会话报告：zh1" in md and "**2** 次生成，**1** 条已评价" in md
    assert "| 文本 | 1 | 1 | 0 | 1 | 0% |" in md and "👎 (文本) 太普通" in md
    handoff_line = next(line for line in md.splitlines() if "火星飞船" in line)
    assert handoff_line.split(":")[0].split("：")[0] in ("- 询问资料中没有的商品", "- 知识库中没有")
    english = [w for w in ("Session report", "generations", "Comments", "Worst", "None.") if w in md]
    assert english == []


def test_report_cli_writes_html(services, tmp_path):
    services.text.generate("hi", session_id="cli1")
    out = tmp_path / "r.html"
    run = run_cli("report", "--session", "cli1", "--out", str(out))  # in-process: no new interpreter
    assert run.returncode == 0 and out.read_text().startswith("<!doctype html>")


def test_report_cli_in_chinese(services):
    # The replay: the CLI's report was English only, with raw reason keys.
    services.text.generate("写一句口号", session_id="cli2")
    services.support.chat("你们卖火星飞船吗", session_id="cli2")
    run = run_cli("report", "--session", "cli2", "--lang", "zh")
    assert run.returncode == 0 and "# 会话报告：cli2" in run.stdout
    assert "询问资料中没有的商品" in run.stdout and "Session report" not in run.stdout


def test_a_report_shows_what_participants_typed_as_text(services):
    """No remote image is fetched and no live link made from a comment or a prompt (.md and .html)."""
    from aigc_demo.feedback.report import session_report, to_html

    fb = services.feedback
    t = services.text.generate("[点这里](https://evil.example/p) 写口号", session_id="ux9")
    fb.rate(t["output_id"], "down", "![pix](http://127.0.0.1:9/t.png) <https://evil.example/q>", session_id="ux9")
    md = session_report("ux9", fb.read("ratings").records, fb.read("events").records, [])
    page = to_html(md, "Session ux9")
    assert "<img" not in page and "<a " not in page and "href" not in page
    assert "default-src 'none'" in page  # and the page may load nothing at all
    assert "\\!\\[pix\\]\\(http://127.0.0.1:9/t.png\\)" in md and "\\[点这里\\]" in md  # escaped in the Markdown too
    assert "![pix](http://127.0.0.1:9/t.png)" in page  # shown as the words that were typed
