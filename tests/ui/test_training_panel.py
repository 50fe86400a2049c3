"""The Insights training panel: its progress line in both languages, and refusals that reach the page."""

from __future__ import annotations

import json

from aigc_demo.services.training import Job
from aigc_demo.ui.training_panel import progress_line


def test_the_progress_line_shows_steps_time_left_and_loss_then_how_it_ended():
    job = Job("polite", "dpo", "packaged:smollm2-135m-instruct")
    assert "正在准备" in progress_line(job, "zh")
    job.step, job.total, job.elapsed_s, job.eta_s, job.loss = 10, 40, 25.0, 75.0, 0.5312
    zh = progress_line(job, "zh")
    assert "第 10/40 步" in zh and "约剩 75 秒" in zh and "0.531" in zh and "▓▓▓▓▓░" in zh
    assert "step 10/40" in progress_line(job, "en")
    job.state, job.card = "done", {"model_id": "trained:polite", "seconds": 100.0}
    job.card["held_out_results"] = {"eval_rewards/accuracies": 0.875}
    assert "trained:polite" in progress_line(job, "zh") and "88%" in progress_line(job, "zh")
    job.state = "cancelled"
    assert "第 10 步后停止" in progress_line(job, "zh")


def test_training_from_the_page_with_too_little_data_says_why_in_chinese(services, settings, monkeypatch):
    import gradio as gr

    from aigc_demo.ui.training_panel import TrainingPanel

    settings.admin_token = "secret"
    with gr.Blocks():
        token, filters = gr.Textbox(), [gr.Textbox() for _ in range(5)]
        panel = TrainingPanel(services, token, filters)
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda text, *a, **k: warnings.append(text))  # the page's toast
    from aigc_demo.ui.common import user_errors

    start = user_errors(panel.start, outputs=5)
    base = "packaged:smollm2-135m-instruct"
    assert start("secret", "dpo", base, "polite", 5, "all", "", "", "", "", _request("zh-CN")) == (gr.skip(),) * 5
    assert warnings and "数据太少" in warnings[0] and "至少需要 8 条" in warnings[0]


def test_the_text_tab_offers_a_model_trained_after_the_server_started(services, settings):
    import gradio as gr

    from aigc_demo.ui.tabs.text import TextTab

    with gr.Blocks():
        tab = TextTab(services, [])
        restore, outputs, _ = tab.on_load()
    folder = settings.data_dir / "models" / "polite"
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"base": settings.model_for("text")}), encoding="utf-8")
    updates = restore(None, _request("zh-CN"))
    assert ("trained:polite" in [value for _, value in updates[tab.model]["choices"]]) and tab.model in outputs


def _request(lang: str):
    import gradio as gr
    import starlette.requests

    scope = {
        "type": "http",
        "headers": [(b"accept-language", lang.encode())],
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "path": "/",
        "method": "GET",
    }
    return gr.Request(request=starlette.requests.Request(scope))
