"""Operating the feedback data: CLI verify / repair / stats, per-process files, PII on write, Hub sync."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from types import SimpleNamespace

import pytest

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput
from aigc_demo.feedback.service import FeedbackService, GeneratedOutput
from aigc_demo.feedback.store import read_file
from tests.helpers import run_cli

pytestmark = pytest.mark.reliability


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli("feedback", *args)


def _rated(service: FeedbackService, tab: str, rating: str, comment: str = "") -> None:
    out = service.register(GeneratedOutput(tab=tab, model={"id": "m"}, params={}, output={"text": "t"}, prompt="p"))
    service.rate(out, rating, comment)


def test_cli_stats_verify_and_repair(settings):
    service = FeedbackService.from_settings(settings)
    for tab, rating in [("text", "up"), ("text", "down"), ("text", "up"), ("image", "down")]:
        _rated(service, tab, rating)
    stats = _cli("stats")
    assert stats.returncode == 0
    assert "4 ratings, 4 after re-ratings; 4 generations logged" in stats.stdout
    assert "text     👍     2  👎     1  like-rate  67%  coverage 3/3 rated" in stats.stdout

    path = service.ratings.path
    assert _cli("verify").returncode == 0
    with open(path, "ab") as fh:
        fh.write(b'{"id":"torn')
    verify = _cli("verify")
    assert verify.returncode == 0 and "torn last line" in verify.stdout
    repair = _cli("repair")
    assert repair.returncode == 0 and "torn tail of 11 bytes removed" in repair.stdout
    assert not read_file(path).torn_tail and len(read_file(path).records) == 4
    assert list(path.parent.glob("ratings.jsonl.bak-*"))

    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"garbage\n"
    path.write_bytes(b"".join(lines))
    bad = _cli("verify")
    assert bad.returncode == 1 and "CORRUPT lines 2" in bad.stdout


def test_cli_stats_json_counts_the_latest_rating_per_output_like_insights(settings):
    import json

    from aigc_demo.feedback.insights import like_rates

    service = FeedbackService.from_settings(settings)
    _rated(service, "text", "up")
    _rated(service, "support", "up")
    records = service.read("ratings").records
    for r in records:  # each output re-rated 👎: Insights counts the last rating only
        service.rate(r["output_id"], "down", "changed my mind")
    stats = _cli("stats", "--json")
    assert stats.returncode == 0
    data = json.loads(stats.stdout)
    assert data["ratings"] == 4 and data["latest"] == 2
    assert data["tabs"]["text"] == {"up": 0, "down": 1, "like_rate": 0.0, "rated_outputs": 1, "generated": 1}
    insights = {r.group: (r.up, r.down) for r in like_rates(service.read("ratings").records, "tab")}
    assert {tab: (t["up"], t["down"]) for tab, t in data["tabs"].items()} == insights


def test_per_process_files_are_read_together(tmp_path):
    a = FeedbackService(tmp_path, replica="host-1")
    b = FeedbackService(tmp_path, replica="host-2")
    _rated(a, "text", "up")
    _rated(b, "image", "down")
    assert sorted(p.name for p in (tmp_path / "feedback").glob("ratings*.jsonl")) == [
        "ratings-host-1.jsonl",
        "ratings-host-2.jsonl",
    ]
    assert sorted(r.tab for r in a.read_ratings()) == ["image", "text"]


def test_pii_is_scrubbed_before_it_reaches_the_disk(tmp_path):
    service = FeedbackService(tmp_path)
    oid = service.register(
        GeneratedOutput(
            tab="support",
            model={"id": "m"},
            params={},
            output={"text": "ok"},
            prompt="我的手机 13800138000",
            messages=[{"role": "user", "content": "mail me: x@y.com"}],
        )
    )
    service.rate(oid, "down", "call +44 20 7946 0958")
    raw = service.ratings.path.read_text(encoding="utf-8")
    for secret in ("13800138000", "x@y.com", "7946"):
        assert secret not in raw
    record = service.read_ratings()[0]
    assert record.prompt == "我的手机 [PHONE]" and record.comment == "call [PHONE]"
    unscrubbed = FeedbackService(tmp_path / "raw", scrub_pii=False)
    oid = unscrubbed.register(GeneratedOutput(tab="text", model={}, params={}, output={}, prompt="x@y.com"))
    unscrubbed.rate(oid, "up")
    assert unscrubbed.read_ratings()[0].prompt == "x@y.com"


def test_ui_rating_reports_a_full_disk_and_the_app_keeps_going(services, monkeypatch):
    """Fault injection at the edge: the rating widget says 'not saved' and why; later ratings work."""
    from aigc_demo.ui.feedback import rate_and_report

    oid = services.text.generate("hi")["output_id"]
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    message, saved = rate_and_report(services.feedback, oid, "up", "my comment")
    assert (message, saved) == ("⚠️ Rating not saved: the disk is full", None)
    assert services.feedback.ratings.read().records == []
    monkeypatch.setattr(os, "write", real_write)
    message, saved = rate_and_report(services.feedback, oid, "up", "my comment")
    assert saved and message.startswith("👍 Saved")
    assert [r.comment for r in services.feedback.read_ratings()] == ["my comment"]
    assert rate_and_report(services.feedback, None, "up") == ("Generate something first, then rate it.", None)


class _FakeHubApi:
    """Stands in for HfApi: records commits instead of sending them."""

    def __init__(self) -> None:
        self.commits: list[dict[str, bytes]] = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        self.commits.append({op.path_in_repo: op.path_or_fileobj.read() for op in operations})
        return SimpleNamespace(oid="abc")

    def run_as_future(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_hub_sync_uploads_whole_lines_from_a_per_process_file(monkeypatch, tmp_path):
    from aigc_demo.feedback import hub

    api = _FakeHubApi()
    real = hub.start_hub_sync
    monkeypatch.setattr(hub, "start_hub_sync", lambda *a, **k: real(*a, **{**k, "hf_api": api}))
    monkeypatch.setenv("AIGC_HUB_DATASET", "team/ratings")
    monkeypatch.setenv("AIGC_REPLICA_ID", "r1")
    service = FeedbackService.from_settings(Settings())
    try:
        assert service.replica == "r1" and service.hub_scheduler is not None
        _rated(service, "text", "up", "first")
        _rated(service, "text", "down", "second")
        service.hub_scheduler.trigger().result()
    finally:
        service.hub_scheduler.stop()
    uploaded = api.commits[-1]
    assert sorted(uploaded) == ["data/events-r1.jsonl", "data/ratings-r1.jsonl"]  # no .lock files
    body = uploaded["data/ratings-r1.jsonl"]
    assert body.endswith(b"\n") and body.count(b"\n") == 2 and b"second" in body


def test_hub_sync_without_token_or_network_keeps_data_local(monkeypatch, caplog, tmp_path):
    from aigc_demo.feedback import hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with caplog.at_level(logging.WARNING):
        assert hub.start_hub_sync("team/ratings", tmp_path) is None
    assert "no Hugging Face token" in caplog.text

    class Offline(_FakeHubApi):
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("Hub unreachable")

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert hub.start_hub_sync("team/ratings", tmp_path, token="t", hf_api=Offline()) is None
    assert "Hub sync to team/ratings is disabled (ConnectionError" in caplog.text
    service = FeedbackService(tmp_path)
    _rated(service, "text", "up")
    assert len(service.read_ratings()) == 1


def test_every_generation_is_logged_and_rateable_after_a_restart(services, settings, fake_registry):
    from aigc_demo.app_services import build_services

    text = services.text.generate("hello", seed=4, session_id="s9")
    image = services.image.generate("fox", width=64, height=64, seed=2)
    support = services.support.chat("How long does delivery take?")
    events = services.feedback.read("events").records
    assert [e["tab"] for e in events] == ["text", "image", "support"]
    first = events[0]
    assert first["type"] == "generation" and first["output_id"] == text["output_id"] == first["id"]
    assert first["session_id"] == "s9" and first["params"]["seed"] == 4 and first["latency_ms"] >= 0
    restarted = build_services(settings, registry=fake_registry)  # empty in-memory output log
    record = restarted.feedback.rate(image["output_id"], "up", item=0)
    assert record.tab == "image" and record.params["seed"] == 2
    assert restarted.feedback.rate(support["output_id"], "down").sources


def test_a_failed_event_write_does_not_fail_the_generation(services, monkeypatch, caplog):
    from aigc_demo.errors import StorageError

    def full(name, record):
        raise StorageError("not saved: the disk is full")

    monkeypatch.setattr(services.feedback, "append", full)
    assert services.text.generate("hi")["text"]
    assert "not saved: the disk is full" in caplog.text


def test_words_added_after_the_click_update_that_rating(services):
    """Issue 25.1: a reason or comment given after 👍 is stored as an update of the same rating."""
    from aigc_demo.feedback.insights import latest_ratings

    feedback = services.feedback
    oid = services.text.generate("写一句奶茶店的口号")["output_id"]
    first = feedback.rate(oid, "up")
    later = feedback.rate(oid, "up", "口号很顺口", reasons=["great"], amends=first.id)
    assert (later.amends, later.reasons, later.comment) == (first.id, ["great"], "口号很顺口")
    latest = latest_ratings(feedback.read("ratings").records)
    assert [(r["id"], r["comment"]) for r in latest] == [(later.id, "口号很顺口")]
    other = services.text.generate("再写一句")["output_id"]
    with pytest.raises(InvalidInput, match="amends"):
        feedback.rate(other, "up", amends=first.id)  # a rating of another output
    with pytest.raises(InvalidInput, match="amends"):
        feedback.rate(oid, "up", amends="0" * 32)
    assert len(feedback.read("ratings").records) == 2
