"""The Support tab's live ticket, driven through its handlers as the page calls them (zh first)."""

from __future__ import annotations

import gradio as gr
import pytest

from tests.ui.test_training_panel import _request


@pytest.fixture
def tab(services, settings):
    from aigc_demo.ui.tabs.support import SupportTab

    settings.admin_token = "secret"
    with gr.Blocks():
        built = SupportTab(services, [])
    return built


def _run(gen):
    return list(gen)[-1]


def _texts(chat):
    return [m["content"] for m in chat]


def test_the_round_trip_on_the_page_in_chinese(tab, services):
    zh = _request("zh-CN")
    handoffs = services.support.handoffs
    first = _run(tab.respond("退款多久到账？", [], [], {}, None, zh))
    chat, history = first[tab.chatbot], first[tab.history]
    opened = _run(tab.talk_to_person(chat, history, first[tab.ids], None, zh))
    state, chat, history = opened[tab.ticket], opened[tab.chatbot], opened[tab.history]
    assert state["ticket"] and state["ticket"] in chat[-1]["content"] and chat[-2]["content"] == "转人工"
    assert "正在等待人工客服" in opened[tab.banner]["value"] and opened[tab.timer].active
    assert opened[tab.rating_box]["visible"] is False  # no 👍/👎 reasons while a person has it
    # The customer's next message goes to the ticket; the bot says so once, then stays quiet.
    sent = _run(tab.respond("订单 8812 退款三天没到", chat, history, opened[tab.ids], state, zh))
    sent2 = _run(tab.respond("在吗？", sent[tab.chatbot], sent[tab.history], opened[tab.ids], sent[tab.ticket], zh))
    chat = sent2[tab.chatbot]
    assert _texts(chat)[-3:] == [
        "订单 8812 退款三天没到",
        "已转给人工客服，他们会直接在这里回复您；在此之前我不再自动回答。",
        "在吗？",
    ]
    state = sent2[tab.ticket]
    assert tab.poll(state, chat, sent2[tab.history], zh) == {}  # nothing new: nothing sent
    # An operator opens the ticket and replies: the next tick shows both.
    handoffs.mark_read(state["ticket"])
    handoffs.reply(state["ticket"], "您好，已为您加急，今天内退回。")
    tick = tab.poll(state, chat, sent2[tab.history], zh)
    assert _texts(tick[tab.chatbot])[-1] == "🧑‍💼 **人工客服**：您好，已为您加急，今天内退回。"
    assert "人工客服正在为您处理" in tick[tab.banner]["value"]
    assert tick[tab.history][-1] == {"role": "assistant", "content": "您好，已为您加急，今天内退回。"}
    # Resolved: the chat says so, asks for a score, and stops polling.
    services.support.resolve_handoff(state["ticket"])
    closed = tab.poll(tick[tab.ticket], tick[tab.chatbot], tick[tab.history], zh)
    assert _texts(closed[tab.chatbot])[-1] == "✅ 人工客服已将工单标记为已解决。"
    assert closed[tab.csat_form]["visible"] and not closed[tab.timer].active and closed[tab.ticket]["closed"]
    assert closed[tab.rating_box]["visible"] is True  # the bot answers again: its answers are rated
    # A message after the close is the bot's again, and no tick takes it away.
    after = _run(tab.respond("运费多少？", closed[tab.chatbot], closed[tab.history], {}, closed[tab.ticket], zh))
    assert after[tab.chatbot][-2]["content"] == "运费多少？" and tab.chatbot in after
    assert tab.chatbot not in tab.poll(closed[tab.ticket], after[tab.chatbot], after[tab.history], zh)
    thanks = tab.send_csat(closed[tab.ticket], 5, "很快", zh)
    assert "谢谢您的评价（5/5）" in thanks[tab.banner]["value"] and thanks[tab.ticket] is None
    assert [(r["ticket"], r["csat"]) for r in services.feedback.read("csat").records] == [(state["ticket"], 5)]


def test_the_button_while_with_a_person_does_not_open_a_second_ticket(tab, services, monkeypatch):
    zh = _request("zh-CN")
    infos: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda text, *a, **k: infos.append(text))
    opened = _run(tab.talk_to_person([], [], {}, None, zh))
    again = _run(tab.talk_to_person(opened[tab.chatbot], opened[tab.history], {}, opened[tab.ticket], zh))
    assert again == {} and "您已在人工客服队列中" in infos[0]
    assert len(services.support.handoffs.tickets()) == 1


def test_a_handed_back_ticket_returns_the_chat_to_the_bot_in_english(tab, services):
    en = _request("en-US")
    opened = _run(tab.talk_to_person([], [], {}, None, en))
    assert opened[tab.chatbot][0]["content"] == "I'd like to talk to a person"
    services.support.handoffs.hand_back(opened[tab.ticket]["ticket"])
    tick = tab.poll(opened[tab.ticket], opened[tab.chatbot], opened[tab.history], en)
    assert "handed you back to the assistant" in tick[tab.chatbot][-1]["content"]
    assert not tick[tab.csat_form]["visible"] and "Back with the assistant" in tick[tab.banner]["value"]


def test_a_reload_restores_the_ticket_and_polls_again(tab, services):
    zh = _request("zh-CN")
    zh.request.scope["query_string"] = b"session=ux-7"  # a user-testing link: the page's session code
    opened = _run(tab.talk_to_person([], [], {}, None, zh))
    value = {"chat": opened[tab.chatbot], "history": opened[tab.history], "ids": {}, "ticket": opened[tab.ticket]}
    assert tab.restore({"session": "ux-8", "value": value}, zh) == gr.skip()  # someone else's page: not shown
    restored = tab.restore({"session": "ux-7", "value": value}, zh)
    assert restored[tab.timer].active and restored[tab.ticket]["sig"] == ""
    services.support.handoffs.reply(opened[tab.ticket]["ticket"], "您好")
    tick = tab.poll(restored[tab.ticket], restored[tab.chatbot], restored[tab.history], zh)
    assert _texts(tick[tab.chatbot])[-1].endswith("您好") and tick[tab.banner]["visible"]


def test_an_unknown_ticket_in_the_browser_is_dropped_not_an_error(tab):
    zh = _request("zh-CN")
    stale = {"ticket": "T-261206-ABCD-EFGH-JKMN-PQRS", "base": 0, "hbase": 0, "sig": ""}
    tick = tab.poll(stale, [], [], zh)
    assert tick[tab.ticket] is None and not tick[tab.timer].active
    answer = _run(tab.respond("退款多久到账？", [], [], {}, stale, zh))
    assert "工作日" in answer[tab.chatbot][-1]["content"]


def test_a_score_needs_a_choice(tab, services, monkeypatch):
    from aigc_demo.ui.common import user_errors

    zh = _request("zh-CN")
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda text, *a, **k: warnings.append(text))
    opened = _run(tab.talk_to_person([], [], {}, None, zh))
    services.support.handoffs.reply(opened[tab.ticket]["ticket"], "已处理")
    services.support.resolve_handoff(opened[tab.ticket]["ticket"])
    send = user_errors(tab.send_csat, outputs=4)
    assert send(opened[tab.ticket], None, "", zh) == (gr.skip(),) * 4
    assert warnings == ["评分请选 1 到 5 分。"]
