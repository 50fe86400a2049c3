"""Services with fake backends: validation, results, registered outputs, ratings."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from aigc_demo.errors import AigcError, InvalidInput, NotFound, StorageError
from aigc_demo.services.image import a1111_parameters, read_recipe
from aigc_demo.services.lang import contains_cjk
from aigc_demo.services.text import PRESETS

RECORD_KEYS = {
    "schema",
    "id",
    "ts",
    "app_version",
    "session_id",
    "tab",
    "output_id",
    "rating",
    "comment",
    "model",
    "params",
    "prompt",
    "messages",
    "output",
    "sources",
    "latency_ms",
}


# -- text ---------------------------------------------------------------------------------


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


# -- image ---------------------------------------------------------------------------------


def test_generate_image_saves_png_with_reproducible_recipe(services):
    result = services.image.generate("a red fox", negative_prompt="blurry", seed=42, num_images=2, width=64, height=72)
    assert result["seed"] == 42 and len(result["images"]) == 2 and result["placeholder"]
    img = Image.open(result["images"][1])
    assert img.size == (64, 72)
    params = img.text["parameters"]
    assert params.startswith("a red fox\nNegative prompt: blurry\nSteps: 4, CFG scale: 5, Seed: 43, Size: 64x72")
    recipe = json.loads(img.text["aigc"])
    assert recipe["seed"] == 43 and recipe["model"] == "packaged:tiny-sd"
    output = services.feedback.outputs.get(result["output_id"]).output
    assert output["path"] == result["image"] and len(output["sha256"]) == 64


def test_an_image_reads_back_its_own_settings(services):
    style = next(n for n in services.image.styles if n != "None")
    result = services.image.generate(
        "雨后的江南小镇", negative_prompt="模糊", seed=7, num_images=2, width=64, height=72, steps=3, style=style
    )
    recipe = read_recipe(result["images"][1], max_side=512, max_steps=50)
    # What the user typed and chose, not the styled prompt: applying it reproduces image 2.
    assert recipe == {
        "prompt": "雨后的江南小镇",
        "negative_prompt": "模糊",
        "style": style,
        "steps": 3,
        "guidance_scale": 5.0,
        "width": 64,
        "height": 72,
        "seed": 8,
        "model": "packaged:tiny-sd",
        "source": "aigc_demo",
        "adjusted": [],
    }


def _png_with(tmp_path, **chunks) -> str:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value)
    path = tmp_path / "dropped.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return str(path)


def test_an_automatic1111_png_reads_back_and_is_kept_inside_our_limits(tmp_path):
    parameters = (
        "masterpiece, 1girl, (cherry blossoms:1.2), 樱花\nsecond line of prompt\n"
        "Negative prompt: lowres, bad hands\n"
        "Steps: 80, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3407, Size: 1024x1023, Model hash: 6ce0161689, "
        'Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2", Version: v1.7.0'
    )
    recipe = read_recipe(_png_with(tmp_path, parameters=parameters), max_side=512, max_steps=50)
    assert recipe == {
        "prompt": "masterpiece, 1girl, (cherry blossoms:1.2), 樱花\nsecond line of prompt",
        "negative_prompt": "lowres, bad hands",
        "steps": 50,
        "guidance_scale": 7.5,
        "seed": 3407,
        "width": 512,
        "height": 512,
        "model": "v1-5-pruned-emaonly",
        "source": "a1111",
        "adjusted": ["width", "height", "steps"],
    }
    only_prompt = read_recipe(_png_with(tmp_path, parameters="a cat"), max_side=512, max_steps=50)
    assert only_prompt == {"prompt": "a cat", "negative_prompt": "", "source": "a1111", "adjusted": []}


@pytest.mark.parametrize("content", ["no-chunks", "not-an-image", "empty-parameters"])
def test_a_file_without_settings_gets_a_clear_message(tmp_path, content):
    if content == "not-an-image":
        path = tmp_path / "notes.png"
        path.write_text("hello", encoding="utf-8")
        needle = "not an image"
    else:
        path = _png_with(tmp_path, **({"parameters": "  "} if content == "empty-parameters" else {}))
        needle = "carries no generation settings"
    with pytest.raises(InvalidInput, match=needle):
        read_recipe(path, max_side=512, max_steps=50)


def test_image_progress_is_reported_per_step(services):
    steps = []
    services.image.generate("x", steps=3, width=64, height=64, on_step=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"width": 100}, "width must be a multiple of 8, got 100"),
        ({"height": 2048}, "height must be between 64 and 1024, got 2048"),
        ({"steps": 0}, "steps must be between 1 and 50, got 0"),
        ({"steps": 51}, "steps must be between 1 and 50, got 51"),
        ({"guidance_scale": float("inf")}, "guidance scale must be a finite number"),
        ({"num_images": 5}, "number of images must be between 1 and 4, got 5"),
    ],
)
def test_bad_image_input(services, kwargs, needle):
    with pytest.raises(InvalidInput) as info:
        services.image.generate("ok", **kwargs)
    assert needle in info.value.message


def test_a1111_parameters_without_negative():
    text = a1111_parameters(
        {
            "prompt": "p",
            "negative_prompt": "",
            "steps": 2,
            "guidance_scale": 0.0,
            "seed": 1,
            "width": 512,
            "height": 512,
            "model": "m",
        }
    )
    assert text == "p\nSteps: 2, CFG scale: 0, Seed: 1, Size: 512x512, Model: m"


# -- ratings -------------------------------------------------------------------------------


def test_rating_record_has_every_documented_key(services):
    result = services.text.generate("Hi", seed=3, session_id="s1")
    record = services.feedback.rate(result["output_id"], "up", "  nice  ", reasons=["great", "bogus"])
    stored = services.feedback.ratings.read().records
    assert len(stored) == 1
    line = stored[0]
    assert RECORD_KEYS <= set(line)
    assert line["id"] == record.id and line["rating"] == "up" and line["comment"] == "nice"
    assert line["reasons"] == ["great"]
    assert line["tab"] == "text" and line["session_id"] == "s1"
    assert line["params"]["seed"] == 3
    assert line["model"] == {"id": "packaged:qwen2.5-coder-0.5b-instruct", "backend": "fake", "profile": "offline"}
    assert line["output"]["text"] == result["text"]


def test_rating_again_appends_and_last_wins(services):
    oid = services.text.generate("Hi")["output_id"]
    services.feedback.rate(oid, "up")
    services.feedback.rate(oid, "down", "changed my mind")
    records = services.feedback.read_ratings()
    assert [r.rating for r in records] == ["up", "down"]


@pytest.mark.parametrize(
    ("output_id", "rating", "comment", "error", "needle"),
    [
        ("nope", "up", "", NotFound, "Unknown output_id 'nope'"),
        (None, "up", "", NotFound, "Unknown output_id"),
        ("OK", "meh", "", InvalidInput, "rating must be 'up' or 'down', got 'meh'"),
        ("OK", "up", "c" * 2001, InvalidInput, "comment is 2001 characters"),
    ],
)
def test_bad_ratings_write_nothing(services, output_id, rating, comment, error, needle):
    real = services.text.generate("Hi")["output_id"]
    with pytest.raises(error) as info:
        services.feedback.rate(real if output_id == "OK" else output_id, rating, comment)
    assert needle in info.value.message
    assert services.feedback.ratings.read().records == []


def test_storage_failure_is_reported(services, monkeypatch):
    import errno
    import os

    oid = services.text.generate("Hi")["output_id"]

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError) as info:
        services.feedback.rate(oid, "up")
    assert info.value.message == "rating not saved: the disk is full"


def test_an_image_job_on_a_full_disk_says_so_and_leaves_no_file(services, monkeypatch):
    import errno

    from PIL import Image as PILImage

    saved = {"n": 0}
    real_save = PILImage.Image.save

    def second_fails(self, fp, *args, **kwargs):
        saved["n"] += 1
        if saved["n"] == 2:
            fp.write(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "save", second_fails)
    registered = []
    monkeypatch.setattr(services.feedback, "register", registered.append)
    with pytest.raises(AigcError) as info:
        services.image.generate("一只狐狸", seed=3, num_images=2, width=64, height=64)
    assert "disk is full" in info.value.message and "磁盘已满" in info.value.localized("zh")
    assert not [p for p in services.image.out_dir.rglob("*") if p.is_file()]  # no 0-byte or half-written PNG
    assert registered == []  # nothing registered that could be rated


def test_an_image_folder_that_cannot_be_written_gets_the_same_clear_message(services):
    # The replay made the day's folder a file: cleaning up the partial PNG raised too, and the
    # user read the generic "something went wrong" instead of what to do.
    from datetime import UTC, datetime

    services.image.out_dir.mkdir(parents=True, exist_ok=True)
    (services.image.out_dir / datetime.now(UTC).strftime("%Y-%m-%d")).write_bytes(b"not a folder")
    day = services.image.out_dir / datetime.now(UTC).strftime("%Y-%m-%d")
    with pytest.raises(AigcError) as info:
        services.image.generate("一只狐狸", seed=3, width=64, height=64)
    assert "磁盘已满或不可写" in info.value.localized("zh")
    assert services.feedback.failures["images"]["failing"]  # /healthz says degraded
    day.unlink()  # the host frees the folder: the next image is saved and the flag clears
    services.image.generate("一只狐狸", seed=3, width=64, height=64)
    assert not services.feedback.failures["images"]["failing"]


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


def test_each_image_of_a_batch_can_be_rated_alone(services):
    result = services.image.generate("a fox", seed=10, num_images=3, width=64, height=64)
    services.feedback.rate(result["output_id"], "down", item=2, reasons=["low quality"])
    services.feedback.rate(result["output_id"], "up")
    first, whole = services.feedback.read_ratings()
    assert first.item == 2 and first.params["seed"] == 12 and first.output["path"] == result["images"][2]
    assert whole.item is None and len(whole.output["images"]) == 3
    with pytest.raises(InvalidInput, match="item must be between 0 and 2"):
        services.feedback.rate(result["output_id"], "up", item=3)


def test_style_is_applied_and_recorded(services):
    result = services.image.generate(
        "a lamp", style="Product shot", negative_prompt="dust", width=64, height=64, seed=1
    )
    img = Image.open(result["image"])
    recipe = json.loads(img.text["aigc"])
    assert recipe["prompt"].startswith("studio product photo of a lamp")
    assert recipe["negative_prompt"].startswith("dust, clutter") and recipe["style"] == "Product shot"
    output = services.feedback.outputs.get(result["output_id"])
    assert output.prompt == "a lamp" and output.params["style"] == "Product shot"
    with pytest.raises(InvalidInput, match="Unknown style 'Nope'"):
        services.image.generate("x", style="Nope")


def test_cuda_out_of_memory_becomes_advice_and_the_next_request_works(services, monkeypatch):
    import torch

    backend = services.registry.get("image")
    real = backend.generate
    calls = []

    def oom_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    released = []
    monkeypatch.setattr(backend, "generate", oom_once)
    monkeypatch.setattr("aigc_demo.services.image.release_gpu_memory", lambda: released.append(1))
    with pytest.raises(AigcError) as info:
        services.image.generate("x", width=1024, height=1024, num_images=4)
    assert info.value.message.startswith("Out of GPU memory at 1024×1024 × 4. Try 768×768 or fewer images")
    assert released == [1]
    assert services.image.generate("x", width=64, height=64)["images"]


def test_zero_gpu_shim_is_a_no_op_off_spaces(monkeypatch):
    from aigc_demo.models.device import zero_gpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def fn(x):
        return x * 2

    assert zero_gpu(duration=5)(fn) is fn


def test_zero_gpu_shim_wraps_with_spaces_gpu_on_zero_gpu(monkeypatch):
    import sys
    import types

    from aigc_demo.models import device

    seen = {}
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: lambda f: (seen.setdefault("duration", duration), f)[1]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: object())

    def estimate(*args):
        return 30

    wrapped = device.zero_gpu(duration=estimate)(lambda: "ran")
    assert wrapped() == "ran" and seen["duration"] is estimate


# -- idempotent ratings ----------------------------------------------------------------------


def test_a_retried_rating_with_its_key_is_stored_once_even_after_a_restart(services, settings):
    from aigc_demo.feedback.service import FeedbackService

    result = services.text.generate("写一句口号", seed=1)
    key = "3f1c2a9e-5b7d-4c1e-9a2b-7d8e6f5a4b3c"
    first = services.feedback.rate(result["output_id"], "up", "好", idempotency_key=key)
    again = services.feedback.rate(result["output_id"], "up", "好", idempotency_key=key)
    assert again.id == first.id and len(services.feedback.read("ratings").records) == 1
    # A new process (a restart) reads the key back from the ratings file.
    restarted = FeedbackService.from_settings(settings)
    assert restarted.rate(result["output_id"], "up", "好", idempotency_key=key).id == first.id
    assert len(restarted.read("ratings").records) == 1
    # Another rating under the same key is refused, not silently swallowed; no key: a new record.
    with pytest.raises(InvalidInput, match="already used for another rating"):
        restarted.rate(result["output_id"], "down", idempotency_key=key)
    restarted.rate(result["output_id"], "down")
    assert len(restarted.read("ratings").records) == 2


@pytest.mark.parametrize("key", ["short", "x" * 129, "有中文的键名称很长很长", 12345678, ["k" * 10]])
def test_a_malformed_idempotency_key_gets_a_clear_message(services, key):
    result = services.text.generate("hi", seed=1)
    with pytest.raises(InvalidInput, match="idempotency_key must be"):
        services.feedback.rate(result["output_id"], "up", idempotency_key=key)
    assert services.feedback.read("ratings").records == []


def test_concurrent_retries_with_one_key_store_one_record(services):
    import concurrent.futures

    result = services.text.generate("hi", seed=1)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = set(
            pool.map(
                lambda _: services.feedback.rate(result["output_id"], "up", idempotency_key="k" * 16).id, range(16)
            )
        )
    assert len(ids) == 1 and len(services.feedback.read("ratings").records) == 1


@pytest.mark.parametrize("blank", ["\u200b\u200b", "\u200d \ufeff", "\u2060\n\u200c"])
def test_a_prompt_of_zero_width_characters_only_is_empty(services, blank):
    """Issue 25.11: zero-width and format characters alone counted as a prompt."""
    with pytest.raises(InvalidInput, match="empty"):
        services.text.generate(blank)
    with pytest.raises(InvalidInput, match="empty"):
        services.support.chat(blank)
    assert services.text.generate("你好\u200d")["text"]  # with something visible it is a prompt
