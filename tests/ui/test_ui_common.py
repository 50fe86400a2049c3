"""The UI edge: errors never show a traceback; Stop flags per session; admin check."""

from __future__ import annotations

import gradio as gr
import pytest

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput
from aigc_demo.ui.common import GENERIC_ERROR, StopFlags, is_admin, user_errors


def test_aigc_error_in_a_ui_handler_becomes_a_warning_and_keeps_outputs():
    def handler(x):
        raise InvalidInput("prompt is empty: type something first.")

    result = user_errors(handler, outputs=3)("")
    assert len(result) == 3 and all(r == gr.skip() for r in result)
    # One output gets a bare value: Gradio would read a 1-tuple as the file / text itself.
    assert user_errors(handler, outputs=1)("") == gr.skip()


def test_nothing_changed_leaves_every_output_as_it_is():
    # A poll's tick returns {} when nothing changed; Gradio 6 read that as too few values and
    # showed 错误 on the chat once a second.
    def tick():
        return {}

    result = user_errors(tick, outputs=6)()
    assert len(result) == 6 and all(r == gr.skip() for r in result)

    def ticks():
        yield {}
        yield {"changed": 1}

    assert list(user_errors(ticks, outputs=1)()) == [gr.skip(), {"changed": 1}]


def test_aigc_error_in_an_api_handler_is_an_escaped_gr_error():
    def handler():
        raise InvalidInput("bad value <script>alert(1)</script>")

    with pytest.raises(gr.Error) as info:
        user_errors(handler)()
    assert "<script>" not in info.value.message and "&lt;script&gt;" in info.value.message


def test_unexpected_errors_show_a_generic_message(caplog):
    def handler():
        yield "partial"
        raise KeyError("secret internals")

    gen = user_errors(handler, outputs=1)()
    assert next(gen) == "partial"
    with pytest.raises(gr.Error) as info:
        next(gen)
    assert info.value.message == GENERIC_ERROR and "secret" not in info.value.message
    assert "KeyError" in caplog.text  # the team still gets the traceback in the log


def test_stop_flags_are_per_session_and_cleaned_up():
    flags = StopFlags()
    with flags.start("a") as a, flags.start("b") as b:
        flags.stop("a")
        assert a.is_set() and not b.is_set()
    flags.stop("a")  # after the run: nothing to stop, no error
    assert flags._flags == {}


def test_admin_token_check(monkeypatch):
    assert not is_admin(Settings(), "anything")  # no token configured: always closed
    monkeypatch.setenv("AIGC_ADMIN_TOKEN", "s3cret")
    s = Settings()
    assert is_admin(s, "s3cret") and not is_admin(s, "s3cre") and not is_admin(s, None)


def test_stats_line_says_when_an_answer_was_cut_at_the_limit():
    from aigc_demo.models.base import GenerationStats
    from aigc_demo.ui.tabs.text import _stats_line

    stats = GenerationStats(completion_tokens=64, finish_reason="length")
    assert _stats_line(stats, "m", True, "en").startswith("✂️ cut at the length limit")
    assert _stats_line(stats, "m", True, "zh").startswith("✂️ 已达长度上限被截断")
    stats.finish_reason = "stop"
    assert _stats_line(stats, "m", True, "zh").startswith("✅")
    stats.finish_reason = "repetition"  # the loop guard ended it: say so, it is no natural end
    assert _stats_line(stats, "m", True, "zh").startswith("⟲ 模型开始重复，已在重复处停止")


def test_knowledge_gap_kinds_are_translated():
    from aigc_demo.ui.tables import gap_rows

    gap = {
        "ts": "2026-11-29T10:00:00",
        "kind": "downvoted",
        "question": "q",
        "answer": "a",
        "comment": "",
        "sources": [],
    }
    handoff = {**gap, "kind": "handoff: not in the knowledge base"}
    assert [r[1] for r in gap_rows([gap, handoff], "zh")] == ["被点踩的回答", "已转人工：知识库中没有"]
    assert gap_rows([gap], "en")[0][1] == "👎 answer"


def test_a_tickets_reason_reads_in_the_page_language_in_its_summary_too():
    from types import SimpleNamespace

    from aigc_demo.ui.tables import ticket_rows

    ticket = SimpleNamespace(
        ticket="T-261130-ABCD",
        ts="2026-11-30T03:22:00",
        status="open",
        reason="not_covered",
        question="你们卖宇宙飞船吗？",
        summary="原因：not_covered\n最后的问题：你们卖宇宙飞船吗？",
    )
    row = ticket_rows([ticket], "zh")[0]
    assert row[3] == "询问资料中没有的商品"
    assert row[5] == "原因：询问资料中没有的商品\n最后的问题：你们卖宇宙飞船吗？"
    assert "not_covered" not in " ".join(map(str, row))


def test_reuse_seed_takes_the_selected_image_of_a_batch():
    from aigc_demo.ui.tabs.image import reuse_seed

    assert reuse_seed(1000, None) == 1000 and reuse_seed(1000, 2) == 1002 and reuse_seed(None, 1) == -1


def test_support_answer_labels_follow_the_page_language():
    from aigc_demo.ui.tabs.support import render_answer

    result = {
        "answer": "3–5 天 [1]",
        "handoff": False,
        "sources": [
            {"rank": 1, "title": "多久到货？", "url": "", "snippet": "标准配送 3–5 个工作日", "verified": True}
        ],
    }
    zh = render_answer(result, "zh")
    assert "**来源**" in zh and "✅ **已验证答案**" in zh and "Sources" not in zh
    assert "**Sources**" in render_answer(result, "en")


def test_health_is_public_so_it_names_no_path_and_shows_storage_failures(settings, fake_registry, monkeypatch):
    from aigc_demo.app_services import build_services, without_paths
    from aigc_demo.errors import StorageError

    assert without_paths(
        {
            "e": "cannot load /srv/models/qwen: no config",
            "id": "packaged:tiny-sd",
            "hub": "Qwen/Qwen2.5-1.5B-Instruct",
            "url": "https://api.example.com/v1",
        }
    ) == {
        "e": "cannot load <path>: no config",
        "id": "packaged:tiny-sd",
        "hub": "Qwen/Qwen2.5-1.5B-Instruct",
        "url": "https://api.example.com/v1",
    }
    services = build_services(settings, registry=fake_registry)
    health = services.health()
    assert health["status"] == "ok" and str(settings.data_dir) not in str(health)
    store = services.feedback.store("handoffs")

    def full_disk(record):
        raise StorageError(f"not saved: no space left on device ({settings.data_dir}/feedback/handoffs.jsonl)")

    monkeypatch.setattr(store, "append", full_disk)
    reply = services.support.chat("转人工", session_id="s1")
    assert reply["handoff"] and "ticket" not in reply["answer"].lower()
    health = services.health()
    assert health["status"] == "degraded" and health["storage_failures"]["handoffs"]["count"] == 1
    assert "no space left" in health["storage_failures"]["handoffs"]["error"]
    assert str(settings.data_dir) not in str(health)
    monkeypatch.undo()  # space freed (issue 25.11: /healthz stayed degraded)
    assert services.support.chat("转人工", session_id="s2")["handoff"]
    health = services.health()
    assert health["status"] == "ok" and health["storage_failures"]["handoffs"]["count"] == 1
    assert health["storage_failures"]["handoffs"]["failing"] is False


def test_a_handler_without_a_request_still_answers_in_the_page_language(monkeypatch):
    """Issue 25.4: a handler that took no gr.Request answered a Chinese page in English."""
    import inspect

    import gradio as gr

    from aigc_demo.errors import AigcError
    from aigc_demo.ui.common import user_errors

    shown: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message: shown.append(message))

    def guard(token):
        raise AigcError("Wrong or missing admin token.", zh="管理员令牌错误或缺失。")

    wrapped = user_errors(guard, outputs=1)
    assert list(inspect.signature(wrapped).parameters) == ["token", "aigc_request"]  # Gradio fills the request
    wrapped("bad", gr.Request(query_params={"lang": "zh"}, headers={}))
    wrapped("bad")  # called without one (a test, a script): English, and the argument is not taken for it
    assert shown == ["管理员令牌错误或缺失。", "Wrong or missing admin token."]

    def kept(request: gr.Request):
        return request

    assert list(inspect.signature(user_errors(kept, outputs=1)).parameters) == ["request"]
