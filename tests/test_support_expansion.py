"""Support: questions the text model writes for each entry at index time (doc2query)."""

from __future__ import annotations

import json

from aigc_demo.services.support import expansion
from aigc_demo.services.support.kb import Entry, load_kb
from aigc_demo.services.support.retrieval import HybridIndex
from tests.conftest import FakeTextBackend

ENTRY = Entry(id="move-ac", question="空调移机怎么收费？", answer="拆机 150 元/台，装机按新装标准收费。")


class Scripted(FakeTextBackend):
    """Answers each request with the next of its scripted replies (one per language asked)."""

    def __init__(self, *replies: str) -> None:
        super().__init__()
        self.replies = list(replies)

    def stream(self, request, stats=None):
        self.requests.append(request)
        yield self.replies.pop(0) if self.replies else ""


def test_only_short_questions_in_the_language_asked_are_kept():
    assert expansion.keep("1. 我搬家了空调能帮忙拆吗？", "zh", ENTRY) == "我搬家了空调能帮忙拆吗？"
    assert expansion.keep("- How much to move my AC?", "en", ENTRY) == "How much to move my AC?"
    assert expansion.keep("How much is the 空调 move?", "en", ENTRY) is None  # scripts mixed
    assert expansion.keep("Price?", "en", ENTRY) is None  # too short to mean anything
    assert expansion.keep("OK", "zh", ENTRY) is None  # not Chinese
    assert expansion.keep("拆机 150 元/台", "zh", ENTRY) is None  # copied from the answer
    assert expansion.keep("空" * 60, "zh", ENTRY) is None  # an answer, not a question


def test_questions_are_written_in_both_languages_and_cached(tmp_path):
    model = Scripted("1. 搬家空调怎么拆？\n2. 移机要多少钱？\n3. 移机要多少钱？", "How much does moving an AC cost?")
    kb = load_kb_with(tmp_path, [ENTRY])
    seen = []
    questions = expansion.expand(kb, model, "m1", tmp_path / "cache", progress=lambda d, t: seen.append((d, t)))
    assert questions == [["搬家空调怎么拆？", "移机要多少钱？", "How much does moving an AC cost?"]]
    assert seen == [(1, 1)]
    # The first request is in the entry's language, about the entry; the second asks for English.
    assert "空调移机怎么收费" in model.requests[0].messages[-1]["content"]
    assert "English" in model.requests[1].messages[-1]["content"]
    assert model.requests[0].temperature == 0.0  # the same questions every time
    # Cached on disk: a new process does not ask the model again; another model does.
    assert expansion.cached(kb, "m1", tmp_path / "cache") == questions
    assert expansion.cached(kb, "m2", tmp_path / "cache") is None
    again = Scripted()
    assert expansion.expand(kb, again, "m1", tmp_path / "cache") == questions and again.requests == []


def test_an_edited_entry_is_asked_again_and_stop_keeps_what_was_done(tmp_path):
    other = Entry(id="hours", question="营业时间", answer="每天 9:00-21:00。")
    kb = load_kb_with(tmp_path, [ENTRY, other])
    calls = []
    model = Scripted("移机多少钱？", "How much to move an AC?", "几点开门？", "When do you open?")
    assert expansion.expand(kb, model, "m", tmp_path / "c", stop=lambda: len(calls) > 0 or calls.append(1)) is None
    assert len(model.requests) == 2  # the first entry was done, then it stopped
    rest = expansion.expand(kb, model, "m", tmp_path / "c")
    assert rest == [["移机多少钱？", "How much to move an AC?"], ["几点开门？", "When do you open?"]]
    edited = load_kb_with(tmp_path, [ENTRY, Entry(id="hours", question="营业时间", answer="每天 8:00-22:00。")])
    assert expansion.cached(edited, "m", tmp_path / "c") is None  # the changed entry is not cached


def test_a_damaged_cache_is_started_again(tmp_path):
    (tmp_path / "support-questions.json").write_text("{not json", encoding="utf-8")
    assert expansion.QuestionCache(tmp_path).questions == {}


def test_a_generated_question_lets_a_customer_find_the_entry(tmp_path, fake_registry):
    rows = [
        {"id": "move-ac", "question": "空调移机怎么收费？", "answer": "拆机 150 元/台，装机按新装标准收费。"},
        {"id": "hours", "question": "营业时间", "answer": "每天 9:00-21:00。"},
        {"id": "invoice", "question": "可以开发票吗", "answer": "可以，在订单页申请。"},
    ]
    kb = load_kb_with(tmp_path, [Entry(**r) for r in rows])
    embedder = fake_registry.get("embed")
    question = "我要搬家，师傅能上门不"  # not one word in common with the entry
    plain, _ = HybridIndex(kb, embedder).search(question, top_k=3)
    assert next(h for h in plain if h.entry.id == "move-ac").keyword == 0
    expanded, _ = HybridIndex(kb, embedder, questions=[["搬家了师傅能上门拆空调吗？"], [], []]).search(question)
    assert expanded[0].entry.id == "move-ac" and expanded[0].keyword > 0


def load_kb_with(tmp_path, entries: list[Entry]):
    folder = tmp_path / "kb"
    folder.mkdir(exist_ok=True)
    lines = [json.dumps({"id": e.id, "question": e.question, "answer": e.answer}, ensure_ascii=False) for e in entries]
    (folder / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_kb(folder)
