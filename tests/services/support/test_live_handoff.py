"""The live handoff: a customer's thread with an operator, resolution, CSAT; shared and durable.

Chinese first: the customer writes in Chinese unless a test is about English.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from aigc_demo.errors import InvalidInput
from aigc_demo.services.support.handoffs import CUSTOMER_TICKET, HandoffQueue


def _handoff(support, text="我要转人工", history=None):
    history = history or [{"role": "user", "content": "空调移机怎么收费"}, {"role": "assistant", "content": "……"}]
    result = support.chat(text, history, session_id="s-1")
    assert result["handoff"] and result["ticket"]
    return result["ticket"]


def test_a_ticket_number_is_a_secret_of_80_bits(zh_support):
    tickets = {_handoff(zh_support) for _ in range(30)}
    assert len(tickets) == 30 and all(CUSTOMER_TICKET.fullmatch(t) for t in tickets)
    secret = [re.sub(r"^T-\d{6}-|-", "", t) for t in tickets]
    assert all(len(s) == 16 for s in secret)
    # 16 characters from 32 symbols; every symbol shows up across 30 tickets (480 draws).
    assert len(set("".join(secret))) >= 28


def test_the_customers_messages_go_to_the_thread_and_the_bot_says_so_once(zh_support):
    ticket = _handoff(zh_support)
    first = zh_support.chat("我的订单号是 20261206，空调下周要搬家", [], ticket=ticket, session_id="s-1")
    assert first["answer_mode"] == "human" and first["sources"] == [] and first["ticket"] == ticket
    assert "人工客服" in first["answer"] and not first["output_id"]
    second = zh_support.chat("移机能便宜点吗", [], ticket=ticket)
    assert second["answer_mode"] == "human" and second["answer"] == ""  # once only: the bot stays quiet
    thread = zh_support.handoffs.customer(ticket).public()
    assert thread["status"] == "open" and thread["stage"] == "waiting"
    assert [(m["role"], m["content"]) for m in thread["messages"]] == [
        ("customer", "我的订单号是 20261206，空调下周要搬家"),
        ("customer", "移机能便宜点吗"),
    ]
    # Nothing of it was answered by the bot: no generation was logged for these messages.
    logged = [e.get("prompt") for e in zh_support.feedback.read("events").records]
    assert "移机能便宜点吗" not in logged


def test_operator_reply_resolve_save_to_kb_and_csat(zh_support):
    queue = zh_support.handoffs
    ticket = _handoff(zh_support)
    zh_support.chat("移机费能打折吗", [], ticket=ticket)
    assert queue.get(ticket).unread == 1
    queue.mark_read(ticket)
    opened = queue.customer(ticket)
    assert opened.unread == 0 and opened.stage == "operator"  # the customer sees someone has it
    queue.reply(ticket, "您好，我帮您查一下。")
    queue.reply(ticket, "以旧换新的客户移机费八折，挂机160元/台。")
    messages = queue.customer(ticket).public()["messages"]
    assert [m["role"] for m in messages] == ["customer", "operator", "operator"]
    assert messages[0]["ts"] <= messages[1]["ts"] <= messages[2]["ts"]
    with pytest.raises(InvalidInput):
        queue.rate(ticket, 5)  # not before it is closed
    # Resolving without a text takes the operator's last reply, saved as a verified KB answer.
    resolved = zh_support.resolve_handoff(ticket, save_as_answer=True)
    assert resolved.status == "resolved" and resolved.resolution == "以旧换新的客户移机费八折，挂机160元/台。"
    assert resolved.question == "移机费能打折吗"  # the real question, not "我要转人工"
    assert queue.customer(ticket).public()["status"] == "resolved"
    with pytest.raises(InvalidInput):
        zh_support.chat("还有一个问题", [], ticket=ticket) and queue.post(ticket, "还有一个问题")
    stored = queue.rate(ticket, "4", "回复很快")
    assert stored["ticket"] == ticket and stored["csat"] == 4 and stored["first"]
    again = queue.rate(ticket, 1)
    assert again["csat"] == 4 and not again["first"]  # one score per ticket: the first stands
    assert [r["csat"] for r in zh_support.feedback.read("csat").records] == [4]
    # The next customer gets the operator's answer, cited.
    answer = zh_support.chat("以旧换新移机费能打折吗")
    assert answer["sources"][0]["id"] == f"resolved-{ticket}"


@pytest.mark.parametrize("score", [0, 6, "five", 3.5, True, None])
def test_csat_is_a_whole_score_from_1_to_5(zh_support, score):
    ticket = _handoff(zh_support)
    zh_support.handoffs.reply(ticket, "已处理")
    zh_support.resolve_handoff(ticket)
    with pytest.raises(InvalidInput):
        zh_support.handoffs.rate(ticket, score)


def test_a_closed_ticket_message_is_answered_by_the_bot_again(zh_support):
    ticket = _handoff(zh_support)
    zh_support.handoffs.hand_back(ticket)
    assert zh_support.handoffs.customer(ticket).public() == {
        "ticket": ticket,
        "status": "resolved",
        "stage": "returned",
        "messages": [],
        "csat": None,
    }
    result = zh_support.chat("退款多久到账？", [], ticket=ticket)
    assert result["answer_mode"] != "human" and "1-3个工作日" in result["answer"]


@pytest.mark.parametrize(
    "number",
    ["", "T-000000-XXXX", "T-261206-ABCD", "t-261206-abcd-efgh-jkmn-pqrs", None, 12, "T-261206-ABCD-EFGH-JKMN-PQR"],
)
def test_a_wrong_or_short_number_reads_no_thread(zh_support, number):
    _handoff(zh_support)
    with pytest.raises(InvalidInput) as caught:
        zh_support.handoffs.customer(number)
    assert caught.value.key == "no_ticket"


def test_an_old_guessable_ticket_is_found_by_operators_only(zh_support):
    from aigc_demo.feedback.schema import HandoffRecord

    old = HandoffRecord(
        ticket="T-261101-ABCD", output_id="x" * 32, session_id="", reason="requested", lang="zh",
        mood=None, summary="", messages=[{"role": "user", "content": "人工"}], sources=[],
    )  # fmt: skip
    zh_support.feedback.append("handoffs", old.to_dict())
    assert zh_support.handoffs.get("T-261101-ABCD").status == "open"
    with pytest.raises(InvalidInput):
        zh_support.handoffs.customer("T-261101-ABCD")


def test_an_operator_finds_a_ticket_by_its_first_group(zh_support):
    ticket = _handoff(zh_support)
    assert zh_support.handoffs.get(ticket[:13].lower()).ticket == ticket


def test_operator_words_are_stored_as_written_and_customer_words_scrubbed(zh_support):
    ticket = _handoff(zh_support)
    zh_support.chat("我的手机 13812345678", [], ticket=ticket)
    zh_support.handoffs.reply(ticket, "请致电门店 13987654321 预约")
    roles = {m["role"]: m["content"] for m in zh_support.handoffs.customer(ticket).thread}
    assert "13812345678" not in roles["customer"] and "13987654321" in roles["operator"]


def test_two_replicas_on_one_data_dir_share_the_queue_and_threads(tmp_path, zh_support):
    from aigc_demo.feedback.service import FeedbackService

    data = zh_support.settings.data_dir
    a = HandoffQueue(FeedbackService(data, replica="a"), tmp_path / "kb-a")
    b = HandoffQueue(FeedbackService(data, replica="b"), tmp_path / "kb-b")
    ticket = _handoff(zh_support)  # opened by a third process's writer
    a.post(ticket, "在吗")
    b.reply(ticket, "在的，请讲")
    a.post(ticket, "移机多少钱")
    for queue in (a, b):
        assert [m["content"] for m in queue.customer(ticket).thread] == ["在吗", "在的，请讲", "移机多少钱"]
    b.resolve(ticket, "挂机200元/台")
    assert a.get(ticket).status == "resolved" and a.queue("open") == []


def test_the_inbox_is_oldest_first_and_filters(zh_support):
    first = _handoff(zh_support)
    time.sleep(0.002)
    second = _handoff(zh_support, "格力空调保修几年")
    queue = zh_support.handoffs
    assert [t.ticket for t in queue.queue("open")] == [first, second]
    assert [t.ticket for t in queue.queue("open", reason="other_brand")] == [second]
    queue.hand_back(first)
    assert [t.ticket for t in queue.queue("returned")] == [first]
    assert len(queue.queue("all")) == 2


_WRITER = """
import sys
from pathlib import Path
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.services.support.handoffs import HandoffQueue

queue = HandoffQueue(FeedbackService(Path(sys.argv[1])), Path(sys.argv[1]) / "kb-resolved")
ticket = sys.argv[2]
for i in range(10_000):
    if i % 2:
        queue.reply(ticket, f"回复 {i}")
    else:
        queue.post(ticket, f"留言 {i}")
    print(f"ack {i}", flush=True)  # acknowledged: the sender was told it is in the thread
"""


def test_nothing_acknowledged_is_lost_across_a_kill_dash_nine(zh_support):
    """A server process writes a thread (customer and operator turns) and is killed with
    SIGKILL mid-burst; a fresh process reads every acknowledged line, in order."""
    ticket = _handoff(zh_support)
    data = zh_support.settings.data_dir
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(data), ticket], stdout=subprocess.PIPE, text=True, env=env
    )
    acked = -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and acked < 40:
        line = proc.stdout.readline()
        if line.startswith("ack "):
            acked = int(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert acked >= 40
    from aigc_demo.feedback.service import FeedbackService

    fresh = HandoffQueue(FeedbackService(data), data / "kb-resolved")
    thread = fresh.customer(ticket).thread
    words = [m["content"] for m in thread]
    expected = [f"{'回复' if i % 2 else '留言'} {i}" for i in range(acked + 1)]
    assert words[: acked + 1] == expected  # every acknowledged line, in order
    assert len(words) <= acked + 2  # at most the one in flight besides
    fresh.post(ticket, "重启后还能继续")  # and the thread goes on after a torn tail
    assert fresh.customer(ticket).thread[-1]["content"] == "重启后还能继续"
    assert json.dumps(fresh.customer(ticket).public(), ensure_ascii=False)


def test_a_resolved_ticket_is_not_handed_back_and_only_a_resolved_one_is_scored(zh_support):
    queue = zh_support.handoffs
    resolved = _handoff(zh_support)
    queue.reply(resolved, "已为您处理。")
    zh_support.resolve_handoff(resolved)
    with pytest.raises(InvalidInput, match="closed"):
        queue.hand_back(resolved)  # its answer and its customer's score form stay
    assert queue.customer(resolved).status == "resolved"
    returned = _handoff(zh_support)
    queue.hand_back(returned)
    with pytest.raises(InvalidInput):
        queue.rate(returned, 5)  # handed back to the bot: no person's service to score
    assert zh_support.feedback.read("csat").records == []


def test_an_answer_saved_on_one_replica_is_served_by_the_other(zh_support):
    from aigc_demo.feedback.service import FeedbackService

    other = type(zh_support)(zh_support.registry, FeedbackService(zh_support.settings.data_dir), zh_support.settings)
    assert other.chat("以旧换新移机费能打折吗")["sources"][0]["id"] != "resolved"  # its index is built
    ticket = _handoff(zh_support)
    zh_support.chat("移机费能打折吗", [], ticket=ticket)
    zh_support.handoffs.reply(ticket, "以旧换新的客户移机费八折，挂机160元/台。")
    zh_support.resolve_handoff(ticket, save_as_answer=True)
    answer = other.chat("以旧换新移机费能打折吗")
    assert answer["sources"][0]["id"] == f"resolved-{ticket}" and "八折" in answer["answer"]


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("[点这里](http://evil.example)", r"\[点这里\]\(`http://evil.example`\)"),
        ("订单链接 https://shop.example/o?id=8812，谢谢", "订单链接 `https://shop.example/o?id=8812`，谢谢"),
        ("(see www.shop.example/faq_2).", r"\(see `www.shop.example/faq_2`\)."),
        ("**急** <img src=x onerror=alert(1)>", r"\*\*急\*\* \<img src=x onerror=alert\(1\)\>"),
    ],
)
def test_a_customers_words_are_shown_as_typed_and_an_address_whole_and_unlinked(typed, shown):
    # The chat's autolinker made "http://evil.example\)" a live link to http://evil.example%5C.
    from aigc_demo.services.support.bot import md_escape

    assert md_escape(typed) == shown
