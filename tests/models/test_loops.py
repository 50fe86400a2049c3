"""The loop guard: a repeated line, sentence or run ends the answer before the repeat."""

from __future__ import annotations

import pytest

from aigc_demo.config import Settings
from aigc_demo.services.loops import LoopGuard, loop_start

CUP, TASTY = "这款杯子保温长达十二个小时以上。", "味道真的很不错。"
POEM = "1. 春风送暖入人家门前柳色新\n2. 细雨润物细无声\n3. 春风送暖入人家门前柳色新\n4. 还有"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (POEM, "1. 春风送暖入人家门前柳色新\n2. 细雨润物细无声\n"),  # numbering differs, the line is the same
        (CUP + "质量很好。" + CUP + "另外", CUP + "质量很好。"),
        # a short one counts on its third time
        (TASTY + "我很喜欢。" + TASTY + TASTY + "还有", TASTY + "我很喜欢。" + TASTY),
        ("I love this city so much. It is big. I love this city so much. And", "I love this city so much. It is big. "),
        ("她说：" + "爱" * 40, "她说：爱"),
        ("好的" + "我们一起走吧，" * 5, "好的我们一起走吧，"),
    ],
)
def test_a_loop_is_cut_where_the_repeat_begins(text, kept):
    at = loop_start(text)
    assert at is not None
    assert text[:at] == kept


@pytest.mark.parametrize(
    "text",
    [
        "哈哈哈哈，太好笑了",  # a short run is laughter, not a loop
        "1. 早睡早起\n2. 多喝水\n3. 多喝水吧\n",  # lines under six letters and near-repeats pass
        "```python\nreturn value_of_it\nreturn value_of_it\n```\n",  # code repeats lines on purpose
        "标题\n" + "-" * 60 + "\n正文",  # a rule of symbols
        "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
        "第一行诗句写在这里\n第一行诗句写在这",  # the second line is still being written
        'Slogan 3: "Love your pets with pawFresh!" PawFresh. Slogan 4: "Warm homes with pawFresh!" PawFresh. ',
    ],
)
def test_ordinary_text_is_not_a_loop(text):
    assert loop_start(text) is None


def test_the_guard_checks_a_growing_text_and_finds_the_loop_once_it_is_complete():
    guard, text, found = LoopGuard(), "", None
    for piece in ["1. 春风送暖入人家", "门前柳色新\n2. 细雨润物", "细无声\n3. 春风送暖入人家", "门前柳色新\n4."]:
        text += piece
        found = guard.check(text)
        if found is not None:
            break
    assert text.endswith("4.") and found == POEM.index("3.")


def test_the_service_stops_a_looping_answer_and_records_what_came_before(services, fake_registry):
    fake_registry.get("text").reply = "春风送暖入人家门前柳色新\n 细雨润物细无声\n 春风送暖入人家门前柳色新\n 更多内容"
    result = services.text.generate("写一首诗", preset="poem", seed=1)
    assert result["text"] == "春风送暖入人家门前柳色新\n 细雨润物细无声"
    assert result["finish_reason"] == "repetition"
    stored = services.feedback.outputs.get(result["output_id"])
    assert stored.output == {"text": "春风送暖入人家门前柳色新\n 细雨润物细无声", "finish_reason": "repetition"}


def test_the_guard_can_be_switched_off(tmp_path, fake_registry):
    from aigc_demo.app_services import build_services

    settings = Settings(loop_guard=False)
    looping = "春风送暖入人家\n 春风送暖入人家\n 春风送暖入人家"
    services = build_services(settings, registry=fake_registry)
    fake_registry.get("text").reply = looping
    result = services.text.generate("写一首诗", preset="poem", seed=1)
    assert result["text"] == looping and result["finish_reason"] == "stop"


def test_the_quality_bench_replays_the_guard_as_the_service_applies_it(services, fake_registry):
    # bench/text_quality.py scores "with the guard" by replaying it over an unguarded answer;
    # that is only a fair column if the replay ends the text where the service would.
    from bench.text_quality import guarded

    line = "清新一夏好时光天天好心情"
    looping = f"好的，这是五条口号：\n 1. {line}\n 2. 茶香满屋情意浓\n 3. {line}\n 4. 更多"
    fake_registry.get("text").reply = looping
    served = services.text.generate("写口号", preset="slogan", seed=1)
    assert guarded(looping, "stop") == (served["text"], served["finish_reason"]) != (looping, "stop")
