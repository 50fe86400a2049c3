"""The text service with fake backends: validation, presets, history, continue, stop strings."""

from __future__ import annotations

import pytest

from aigc_demo.errors import InvalidInput
from aigc_demo.services.lang import contains_cjk
from aigc_demo.services.text import PRESETS


def test_generate_text_returns_usage_timings_and_registers_output(services):
    result = services.text.generate("Hello there", max_new_tokens=50, temperature=0, seed=7)
    assert result["text"] == "Echo (7): Hello there"
    assert result["usage"] == {"prompt_tokens": 2, "completion_tokens": 4}
    assert set(result["timings"]) == {"ttft_ms", "total_ms", "tokens_per_s"}
    assert result["model"] == "packaged:qwen2.5-coder-0.5b-instruct"
    assert services.feedback.outputs.get(result["output_id"]).output["text"] == result["text"]


def test_stream_yields_growing_text_then_the_result(services):
    updates = list(services.text.stream("one two three", max_new_tokens=50))
    texts = [u.text for u in updates[:-1]]
    assert texts == sorted(texts, key=len) and len(texts) >= 3
    assert updates[-1].done and updates[-1].result["text"] == updates[-2].text


def test_preset_template_and_system_prompt_reach_the_model(services):
    services.text.generate("a tea shop", preset="slogan")
    request = services.registry.get("text").requests[-1]
    assert request.messages[-1]["content"].endswith("for: a tea shop") and "5" in request.messages[-1]["content"]
    assert request.messages[0] == {"role": "system", "content": PRESETS["slogan"].system_en}
    services.text.generate("茶馆", preset="slogan")
    request = services.registry.get("text").requests[-1]
    assert request.messages[-1]["content"] == PRESETS["slogan"].template_zh.format(input="茶馆")
    assert request.messages[0] == {"role": "system", "content": PRESETS["slogan"].system_zh}
    # Settings left out are the preset's, as the page's sliders are; given ones win.
    assert (request.temperature, request.max_new_tokens) == (PRESETS["slogan"].temperature, 128)
    assert request.repeat_penalty == PRESETS["slogan"].repeat_penalty > 1
    services.text.generate("茶馆", preset="slogan", temperature=0.1, max_new_tokens=40, top_p="")
    request = services.registry.get("text").requests[-1]
    assert (request.temperature, request.max_new_tokens, request.top_p) == (0.1, 40, PRESETS["slogan"].top_p)


def test_every_preset_asks_in_the_language_of_the_answer_and_has_a_system_prompt():
    """Without a system prompt the Qwen GGUF's own English one applies ("You are Qwen…"), and
    it introduced itself in English to a Chinese question; an English instruction to
    translate into Chinese got English back."""
    for preset in PRESETS.values():
        assert preset.system_zh and preset.system_en, preset.key
        if preset.key != "translate":
            assert contains_cjk(preset.template_zh.replace("{input}", "")) or preset.template_zh == "{input}"
    translate = PRESETS["translate"]
    assert contains_cjk(translate.template_en) and not contains_cjk(translate.template_zh)


def test_continue_mode_takes_the_raw_text_without_the_repeat_penalty(services):
    services.text.generate("从前有座山，", mode="continue")
    request = services.registry.get("text").requests[-1]
    assert request.prompt == "从前有座山，" and request.messages is None and request.repeat_penalty == 1.0


def test_conversation_history_reaches_the_model_before_the_new_turn(services):
    history = [{"role": "user", "content": "推荐一款绿茶"}, {"role": "assistant", "content": "西湖龙井。"}]
    services.text.generate("多少钱？", history=history, preset="free", system="你是茶馆店员。")
    sent = services.registry.get("text").requests[-1].messages
    assert sent == [{"role": "system", "content": "你是茶馆店员。"}, *history, {"role": "user", "content": "多少钱？"}]
    # Gradio's content parts are read as text; the oldest turns beyond the limit are dropped.
    parts = [{"role": "user", "content": [{"type": "text", "text": "第一句"}]}]
    services.text.generate("第二句", history=parts)
    assert services.registry.get("text").requests[-1].messages[1] == {"role": "user", "content": "第一句"}
    long = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(50)]
    services.text.generate("最后", history=long)
    sent = services.registry.get("text").requests[-1].messages
    assert len(sent) == 22 and sent[0]["role"] == "system" and sent[1]["content"] == "m30"


@pytest.mark.parametrize(
    ("history", "needle"),
    [
        (5, "history must be a list"),
        ("你好", "history must be a list"),
        ([{"role": "user", "content": "长" * 16_001}], "the limit is 16000"),
    ],
)
def test_bad_history_gets_a_clear_message(services, history, needle):
    with pytest.raises(InvalidInput, match=needle):
        services.text.generate("你好", history=history)


def test_raw_continuation_takes_no_history(services):
    with pytest.raises(InvalidInput, match="history only applies in chat mode"):
        services.text.generate("从前有座山", mode="continue", history=[{"role": "user", "content": "x"}])


def test_continue_an_answer_cut_at_the_length_limit(services):
    fake = services.registry.get("text")
    fake.reply = "一 二 三 四 五 六 七"
    cut = services.text.generate("数到七", max_new_tokens=3, seed=5)
    assert cut["text"] == "一 二 三" and cut["finish_reason"] == "length"
    more = services.text.generate(None, continue_output_id=cut["output_id"], max_new_tokens=2)
    # The model sees the same conversation, with the answer so far as the final assistant message.
    sent = fake.requests[-1].messages
    assert sent[-2] == {"role": "user", "content": "数到七"} and sent[-1] == {
        "role": "assistant",
        "content": "一 二 三",
    }
    assert more["text"] == "一 二 三 四 五" and more["continued_from"] == cut["output_id"]
    rest = services.text.generate(None, continue_output_id=more["output_id"], max_new_tokens=10)
    assert rest["text"] == "一 二 三 四 五 六 七" and rest["finish_reason"] == "stop"
    assert [m["role"] for m in fake.requests[-1].messages] == ["system", "user", "assistant"]  # one answer, not two
    assert fake.requests[-1].repeat_penalty == PRESETS["free"].repeat_penalty  # the settings it was written with
    record = services.feedback.find_output(rest["output_id"])
    assert record.params["continued_from"] == more["output_id"] and record.prompt == "数到七"
    assert record.output["text"] == rest["text"]  # a rating covers the whole answer the reader saw


def test_continue_raw_text_and_unknown_answers(services):
    fake = services.registry.get("text")
    fake.reply = "a b c d"
    cut = services.text.generate("once upon", mode="continue", max_new_tokens=2)
    services.text.generate(None, continue_output_id=cut["output_id"])
    assert fake.requests[-1].prompt == "once upon" + "a b" and fake.requests[-1].messages is None
    with pytest.raises(InvalidInput, match="nothing to continue"):
        services.text.generate(None, continue_output_id="0" * 32)


def test_stop_string_cuts_the_output(services):
    result = services.text.generate("alpha beta gamma delta", stop="gamma")
    assert result["text"] == f"Echo ({result['seed']}): alpha beta "
    assert result["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   \n\t "}, "prompt is empty"),
        ({"prompt": "x" * 4001}, "4001 characters long; the limit is 4000"),
        ({"prompt": "ok", "temperature": float("nan")}, "temperature must be a finite number"),
        ({"prompt": "ok", "temperature": 3}, "temperature must be between 0 and 2, got 3"),
        ({"prompt": "ok", "max_new_tokens": 0}, "max_new_tokens must be between 1 and 1024, got 0"),
        ({"prompt": "ok", "max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
        ({"prompt": "ok", "top_p": "abc"}, "top_p must be a number"),
        ({"prompt": "ok", "seed": -5}, "seed must be between -1"),
        ({"prompt": "ok", "preset": "nope"}, "Unknown preset 'nope'"),
        ({"prompt": None}, "prompt is empty"),
        ({"prompt": 123}, "prompt must be text"),
    ],
)
def test_bad_text_input_is_rejected_before_any_model_work(services, kwargs, needle):
    prompt = kwargs.pop("prompt")
    with pytest.raises(InvalidInput) as info:
        services.text.generate(prompt, **kwargs)
    assert needle in info.value.message
    assert services.registry.get("text").requests == []


def test_nul_bytes_are_dropped(services):
    assert services.text.generate("a\x00b", seed=1)["text"] == "Echo (1): ab"


def test_stopping_keeps_and_registers_the_partial_answer(services):
    updates = []
    for update in services.text.stream("one two three four five six", seed=1, should_stop=lambda: len(updates) >= 2):
        updates.append(update)
    final = updates[-1]
    assert final.done and final.result["finish_reason"] == "stopped"
    assert final.result["text"] == "Echo (1):"  # two chunks, then stopped
    assert services.feedback.outputs.get(final.result["output_id"]).output["finish_reason"] == "stopped"


def test_continue_mode_sends_the_raw_text(services):
    services.text.generate("Once upon a time", mode="continue", preset="slogan")
    request = services.registry.get("text").requests[-1]
    assert request.messages is None and request.prompt == "Once upon a time"


def test_system_prompt_overrides_the_preset(services):
    services.text.generate("a lamp", preset="product", system="Answer in pirate speak.")
    messages = services.registry.get("text").requests[-1].messages
    assert messages[0] == {"role": "system", "content": "Answer in pirate speak."}
    services.text.generate("a lamp", preset="product")
    assert services.registry.get("text").requests[-1].messages[0]["content"].startswith("You write accurate")


def test_bad_mode_is_rejected(services):
    with pytest.raises(InvalidInput, match="mode must be 'chat' or 'continue'"):
        services.text.generate("x", mode="rap")


@pytest.mark.parametrize("blank", ["\u200b\u200b", "\u200d \ufeff", "\u2060\n\u200c"])
def test_a_prompt_of_zero_width_characters_only_is_empty(services, blank):
    """Issue 25.11: zero-width and format characters alone counted as a prompt."""
    with pytest.raises(InvalidInput, match="empty"):
        services.text.generate(blank)
    with pytest.raises(InvalidInput, match="empty"):
        services.support.chat(blank)
    assert services.text.generate("你好\u200d")["text"]  # with something visible it is a prompt
