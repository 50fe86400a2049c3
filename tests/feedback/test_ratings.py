"""Ratings through the feedback service: every documented key, last wins, bad input, idempotent retries."""

from __future__ import annotations

import pytest

from aigc_demo.errors import InvalidInput, NotFound, StorageError

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


def test_each_image_of_a_batch_can_be_rated_alone(services):
    result = services.image.generate("a fox", seed=10, num_images=3, width=64, height=64)
    services.feedback.rate(result["output_id"], "down", item=2, reasons=["low quality"])
    services.feedback.rate(result["output_id"], "up")
    first, whole = services.feedback.read_ratings()
    assert first.item == 2 and first.params["seed"] == 12 and first.output["path"] == result["images"][2]
    assert whole.item is None and len(whole.output["images"]) == 3
    with pytest.raises(InvalidInput, match="item must be between 0 and 2"):
        services.feedback.rate(result["output_id"], "up", item=3)


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
