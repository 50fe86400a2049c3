"""From raw engine pieces to visible text: no U+FFFD, stop strings across chunk borders."""

from __future__ import annotations

import random

import pytest

from aigc_demo.models.streaming import REPLACEMENT, Utf8Decoder, VisibleText, find_stop

ZH = "退款一般在3个工作日内原路返回，请耐心等待。"


def _split_bytes(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, 4)
        pieces.append(data[i : i + n])
        i += n
    return pieces


@pytest.mark.parametrize("seed", range(20))
def test_utf8_decoder_reassembles_characters_split_across_tokens(seed):
    decoder = Utf8Decoder()
    out = "".join(decoder.decode(p) for p in _split_bytes(ZH.encode(), seed)) + decoder.finish()
    assert out == ZH


def test_utf8_decoder_drops_a_character_cut_at_the_token_limit():
    data = ZH.encode()[:-2]  # the answer ended mid-character ("。" is 3 bytes)
    decoder = Utf8Decoder()
    out = decoder.decode(data) + decoder.finish()
    assert out == ZH[:-1] and REPLACEMENT not in out


def test_utf8_decoder_drops_invalid_bytes_a_sampler_produced():
    # a lone continuation byte, a start byte cut short by a new character, an impossible byte
    pieces = [b"\xe9\x80", "好".encode(), b"\x80", b"\xff", "的".encode()]
    decoder = Utf8Decoder()
    out = "".join(decoder.decode(p) for p in pieces) + decoder.finish()
    assert out == "好的"


def test_visible_text_removes_replacement_chars_from_text_engines():
    visible = VisibleText()
    out = visible.push("营销\ufffd文案") + visible.push("\ufffd") + visible.finish()
    assert out == "营销文案" == visible.text


@pytest.mark.parametrize("seed", range(10))
def test_stop_string_split_across_chunks_never_shows(seed):
    full = "第一段。END 第二段"
    rng = random.Random(seed)
    visible = VisibleText(["END"])
    shown = ""
    i = 0
    while i < len(full) and not visible.stopped:
        n = rng.randint(1, 3)
        shown += visible.push(full[i : i + n])
        assert "E" not in shown  # nothing of the stop string ever reaches the screen
        i += n
    shown += visible.finish()
    assert visible.stopped and shown == "第一段。" == visible.text


def test_without_stop_strings_nothing_is_held_back():
    visible = VisibleText([])
    assert visible.push("你") == "你" and visible.push("好") == "好"


def test_held_back_text_is_released_at_the_end():
    visible = VisibleText(["\n\n"])
    assert visible.push("答案\n") == "答案"
    assert visible.finish() == "\n" and not visible.stopped


def test_find_stop_earliest_of_several():
    assert find_stop("abc##def||", ["||", "##"]) == 3
    assert find_stop("abc", ["x", ""]) is None
