"""Lookups by id through an incremental index, keyed writes across replicas, readers that
survive records of an unexpected shape or size (issue 25, items 6, 8 and 9)."""

from __future__ import annotations

import json
import threading

import pytest

from aigc_demo.app_services import build_services
from aigc_demo.feedback import store as store_module
from aigc_demo.feedback.schema import GeneratedOutput
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.feedback.store import MAX_LINE_BYTES, StreamIndex, encode_line, read_file


def _output(text: str = "hello") -> GeneratedOutput:
    return GeneratedOutput(tab="text", model={"id": "m"}, params={}, output={"text": text}, prompt="p")


@pytest.fixture
def counted_lines(monkeypatch):
    """How many lines the readers have gone through (each counted once per read)."""
    seen = {"lines": 0}
    real = store_module.scan_lines

    def counting(*args, **kwargs):
        for item in real(*args, **kwargs):
            seen["lines"] += 1
            yield item

    monkeypatch.setattr(store_module, "scan_lines", counting)
    return seen


def test_unknown_ids_cost_no_scan_of_the_history(tmp_path, counted_lines):
    writer = FeedbackService(tmp_path)
    ids = [writer.register(_output(f"answer {i}")) for i in range(300)]
    reader = FeedbackService(tmp_path)  # a restart: nothing in memory
    assert reader.find_output(ids[7]).output == {"text": "answer 7"}
    first = counted_lines["lines"]
    assert first == 300  # the index is built once, streaming the file
    for i in range(200):
        assert reader.find_output(f"{i:032x}") is None  # a fresh random id each time
    assert counted_lines["lines"] == first  # ... and not one line read again
    new = writer.register(_output("late"))
    assert reader.find_output(new).output == {"text": "late"}
    assert counted_lines["lines"] == first + 1  # only the appended line


def test_the_index_follows_a_rotation_without_reading_twice(tmp_path, counted_lines):
    writer = FeedbackService(tmp_path, max_bytes=2000)
    ids = [writer.register(_output("x" * 200)) for i in range(5)]
    reader = FeedbackService(tmp_path)
    assert reader.find_output(ids[0]) is not None
    before = counted_lines["lines"]
    more = [writer.register(_output("y" * 200)) for i in range(12)]  # rotates the file several times
    assert len(list((tmp_path / "feedback").glob("events.*.jsonl"))) >= 2
    assert all(reader.find_output(i) is not None for i in ids + more)
    assert counted_lines["lines"] - before == 12


def test_one_idempotency_key_one_record_across_replicas(tmp_path):
    a = FeedbackService(tmp_path, replica="a")
    b = FeedbackService(tmp_path, replica="b")
    oid = a.register(_output())
    assert b.lookup("ratings", "idempotency_key", "nothing-yet") is None  # B has read the stream already
    first = a.rate(oid, "up", idempotency_key="click-000001")
    again = b.rate(oid, "up", idempotency_key="click-000001")  # the retry lands on the other replica
    assert again.id == first.id
    assert len(a.read("ratings").records) == 1


def test_concurrent_keyed_writes_on_two_replicas_store_one(tmp_path):
    replicas = [FeedbackService(tmp_path, replica=f"r{i}") for i in range(2)]
    oid = replicas[0].register(_output())
    keys = [f"key-{i:06d}" for i in range(40)]
    barrier = threading.Barrier(4)

    def hammer(service: FeedbackService) -> None:
        barrier.wait()
        for key in keys:
            service.rate(oid, "down", idempotency_key=key)

    threads = [threading.Thread(target=hammer, args=(replicas[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [r["idempotency_key"] for r in replicas[0].read("ratings").records]
    assert sorted(stored) == keys  # each key exactly once, whichever replica won


def test_one_arena_vote_per_pair_across_replicas(settings, fake_registry):
    one = build_services(
        settings.model_copy(update={"feedback_per_process": True, "replica_id": "a"}), registry=fake_registry
    )
    two = build_services(
        settings.model_copy(update={"feedback_per_process": True, "replica_id": "b"}), registry=fake_registry
    )
    *_, last = one.arena.text_battle("写一句问候")
    pair_id = last.pair.pair_id
    assert two.arena.find_pair("0" * 32) is None  # B has read the streams before the vote
    _, new_a = one.arena.vote(pair_id, "a")
    record, new_b = two.arena.vote(pair_id, "b")  # found through the pair event A logged
    assert new_a and not new_b and record["choice"] == "a"
    assert len(one.arena.votes()) == 1


def test_a_thumbs_up_on_one_replica_teaches_the_other(settings, fake_registry):
    one = build_services(
        settings.model_copy(update={"feedback_per_process": True, "replica_id": "a"}), registry=fake_registry
    )
    two = build_services(
        settings.model_copy(update={"feedback_per_process": True, "replica_id": "b"}), registry=fake_registry
    )
    first = one.support.chat("How long does delivery take?")
    assert not two.support.chat("How long does delivery take?")["sources"][0].get("verified")  # B is built
    one.feedback.rate(first["output_id"], "up")
    served = two.support.chat("How long does delivery take?")
    assert served["sources"][0].get("verified") is True


def _forge(path, record: dict) -> None:
    """A line with a valid checksum, as someone with access to the files could write it."""
    with open(path, "ab") as fh:
        fh.write(encode_line(record))


def test_a_record_of_an_unexpected_shape_is_skipped_and_reported(services):
    feedback = services.feedback
    first = services.support.chat("How long does delivery take?")
    feedback.rate(first["output_id"], "up")
    path = next((feedback.folder).glob("ratings*.jsonl"))
    _forge(path, {"tab": "support", "output_id": "f" * 32, "rating": "up", "output": "not a dict", "seq": 99})
    _forge(path, {"tab": "support", "output_id": "e" * 32, "rating": "up", "output": {}, "messages": ["x"]})
    # Text fields inside the objects too: a number where text belongs broke the parquet export.
    _forge(path, {"tab": "support", "output_id": "d" * 32, "rating": "up", "output": {"text": 123}})
    _forge(path, {"tab": "support", "output_id": "c" * 32, "rating": "up", "output": {}, "sources": [{"id": 5}]})
    read = feedback.read("ratings")
    assert len(read.records) == 1
    assert [why for *_, why in read.skipped] == [
        "output is str",
        "messages holds a non-object",
        "output.text is int",
        "sources.id is int",
    ]
    restarted = build_services(services.settings, registry=services.registry)
    assert restarted.support.chat("How long does delivery take?")["sources"][0].get("verified") is True


def test_an_oversized_line_is_skipped_without_holding_it(tmp_path):
    path = tmp_path / "ratings.jsonl"
    with open(path, "wb") as fh:
        fh.write(encode_line({"a": 1}))
        fh.write(b'{"huge": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
        fh.write(encode_line({"b": 2}))
    result = read_file(path)
    assert [list(r) for r in result.records] == [["a"], ["b"]]
    assert result.skipped == [(str(path), 2, "too_long")]
    index = StreamIndex(tmp_path, "ratings", ("b",))
    index.refresh()
    assert index.tail.skipped == 1


def test_a_record_over_the_line_limit_is_refused_not_written(tmp_path):
    feedback = FeedbackService(tmp_path)
    from aigc_demo.errors import StorageError

    with pytest.raises(StorageError, match="over"):
        feedback.append("events", {"type": "generation", "blob": "x" * (MAX_LINE_BYTES + 1)})
    assert not list(feedback.folder.glob("events*.jsonl")) or feedback.read("events").records == []


def test_a_half_written_line_is_read_when_it_is_finished(tmp_path):
    path = tmp_path / "feedback" / "events.jsonl"
    path.parent.mkdir()
    line = encode_line(
        {"type": "generation", "output_id": "a" * 32, "tab": "t", "model": {}, "params": {}, "output": {}}
    )
    path.write_bytes(line[:20])
    index = StreamIndex(tmp_path / "feedback", "events", ("output_id",))
    assert index.get("output_id", "a" * 32) is None
    with open(path, "ab") as fh:
        fh.write(line[20:])
    assert json.dumps(index.get("output_id", "a" * 32)["output"]) == "{}"
