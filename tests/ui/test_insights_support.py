"""Insights measures the support flow: handoff rates and the people's service (zh first)."""

from __future__ import annotations

import gradio as gr
import pytest

from tests.ui.test_training_panel import _request

TOKEN = "secret"


@pytest.fixture
def tab(services, settings):
    from aigc_demo.ui.tabs.insights import InsightsTab

    settings.admin_token = TOKEN
    with gr.Blocks():
        built = InsightsTab(services)
    return built


def _show(tab, lang: str, session: str = ""):
    return tab.show(TOKEN, "all", "", "", session, "", _request(lang))


def test_insights_shows_handoff_rates_and_the_service_the_people_gave(tab, services):
    support, handoffs = services.support, services.support.handoffs
    support.chat("运费多少钱？", [], session_id="s1")
    first = support.chat("我要转人工", [], session_id="s1")["ticket"]
    second = support.chat("人工客服", [], session_id="s2")["ticket"]
    assert handoffs.customer(second).stage == "waiting"
    handoffs.reply(first, "您好，满 99 元包邮。")
    handoffs.resolve(first, "满 99 元包邮")
    handoffs.rate(first, 4, "快")

    shown = _show(tab, "zh-CN")
    rates = shown[tab.handoff_rates]
    assert list(rates.columns) == ["维度", "分组", "回答数", "转人工", "转人工率", "区间下限", "区间上限"]
    by_session = {row[1]: row for row in rates.values.tolist() if row[0] == "会话"}
    assert by_session["s1"][2:5] == [2, 1, "50%"] and by_session["s2"][2:5] == [1, 1, "100%"]
    assert {row[0] for row in rates.values.tolist()} >= {"模型", "会话"}
    service = shown[tab.service]
    # Two tickets, one still open; one first reply and one resolution, each within seconds.
    assert "2 个工单，1 个未结束" in service and "（1 个工单" in service and "（1 个" in service
    assert "秒" in service and "4.00/5" in service and "1 份评价" in service
    # A session's code narrows the line to that session's tickets.
    waiting = _show(tab, "zh-CN", "s2")[tab.service]
    assert "1 个工单，1 个未结束" in waiting
    assert "客服尚未回复" in waiting and "尚无已解决工单" in waiting and "尚无满意度评分" in waiting
    english = _show(tab, "en")[tab.service]
    assert "2 tickets, 1 still open" in english and "4.00/5" in english


def test_with_no_handoffs_the_service_line_is_empty_and_rates_show_zero(tab, services):
    services.support.chat("运费多少钱？", [], session_id="s1")
    shown = _show(tab, "zh-CN")
    assert shown[tab.service] == ""
    by_session = [row for row in shown[tab.handoff_rates].values.tolist() if row[0] == "会话"]
    assert by_session == [["会话", "s1", 1, 0, "0%", "0%", "79%"]]


def test_the_session_report_carries_the_human_service_line(tab, services):
    number = services.support.chat("我要转人工", [], session_id="ux-1")["ticket"]
    services.support.handoffs.reply(number, "您好")
    files = tab.session_report(TOKEN, "ux-1", _request("zh-CN"))
    text = open(files[0], encoding="utf-8").read()
    assert "人工客服：共 **1** 个工单（1 个仍在处理）" in text and "n=1" in text
