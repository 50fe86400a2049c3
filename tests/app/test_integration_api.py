"""The real app on a free port with the embedded offline models, driven by gradio_client."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import pytest
from PIL import Image

from aigc_demo.config import Settings
from aigc_demo.feedback.store import read_stream
from tests.helpers import PUBLIC_ENDPOINTS, free_port, serve_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ADMIN_TOKEN = "operator-token-29"


@pytest.fixture(scope="module")
def app(tmp_path_factory, model_cache):
    data = tmp_path_factory.mktemp("app-data")
    settings = Settings(
        profile="offline", data_dir=data, cache_dir=model_cache, port=free_port(), admin_token=ADMIN_TOKEN
    )
    with serve_app(settings) as url:
        yield settings, url


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[1], verbose=False, download_files=str(app[0].data_dir / "downloads"))


def test_api_conversation_and_continuing_a_cut_answer(client):
    """The real packaged model over the API: a second turn sent with the first, then the rest
    of an answer cut at the length limit (it continues the same answer, not a new one)."""
    history = [
        {"role": "user", "content": "用中文从一数到十，用逗号分隔。"},
        {"role": "assistant", "content": "一，二，三，"},
    ]
    cut = client.predict("继续", history=history, max_new_tokens=2, temperature=0, api_name="/generate_text")
    assert cut["finish_reason"] == "length" and cut["usage"]["prompt_tokens"] > 20  # the history was sent
    more = client.predict(
        "", continue_output_id=cut["output_id"], max_new_tokens=8, temperature=0, api_name="/generate_text"
    )
    assert more["text"].startswith(cut["text"]) and len(more["text"]) > len(cut["text"])
    assert more["continued_from"] == cut["output_id"]


def test_api_arena_battle_then_one_vote_per_pair(app, client):
    """Blind until the vote: no contestant names in the battle; the vote reveals them; a
    second vote on the pair returns the first; the record holds both sides' recipes."""
    battle = client.predict("为茶饮店写一句广告语", max_new_tokens=24, seed=3, api_name="/arena_text")
    assert set(battle) == {"pair_id", "a", "b"} and battle["a"]["text"] and battle["b"]["text"]
    contestants = {"qwen2.5-coder-0.5b-T0.2", "qwen2.5-coder-0.5b-T1.0", "smollm2-135m-T0.7"}  # the defaults
    assert not any(name in str(battle) for name in contestants)
    vote = client.predict(battle["pair_id"], "a", "style", "A 更有创意", api_name="/arena_vote")
    assert vote["saved"] and vote["first_vote"] and {vote["a_model"], vote["b_model"]} < contestants
    again = client.predict(battle["pair_id"], "b", api_name="/arena_vote")
    assert again["record_id"] == vote["record_id"] and again["choice"] == "a" and not again["first_vote"]
    stored = [r for r in read_stream(app[0].data_dir / "feedback", "arena").records if r.get("type") == "arena_vote"]
    assert len(stored) == 1 and stored[0]["a"]["output"]["text"] == battle["a"]["text"]
    images = client.predict("雨后的江南小镇", seed=5, width=64, height=64, api_name="/arena_image")
    assert Image.open(images["a"]["image"]).size == (64, 64) and images["a"]["output_id"] != images["b"]["output_id"]
    for bad in ({"x": 1}, "r" * 600):  # issue 25.11: the reason is short text, or refused before anything is stored
        with pytest.raises(Exception, match="reason"):
            client.predict(images["pair_id"], "both_bad", bad, api_name="/arena_vote")
    assert client.predict(images["pair_id"], "both_bad", api_name="/arena_vote")["saved"]


def test_api_round_trip_writes_three_valid_records(app, client):
    settings, _ = app
    text = client.predict("What is 2 + 2?", max_new_tokens=24, temperature=0, api_name="/generate_text")
    assert "4" in text["text"]
    assert text["usage"]["completion_tokens"] >= 1 and text["timings"]["total_ms"] > 0
    assert text["model"] == "packaged:qwen2.5-coder-0.5b-instruct" and text["done"] is True  # the default

    image = client.predict("a red fox", steps=2, width=64, height=64, seed=11, num_images=2, api_name="/generate_image")
    assert image["seed"] == 11 and len(image["images"]) == 2
    downloaded = Image.open(image["image"])
    assert downloaded.size == (64, 64) and "Seed: 11" in downloaded.text["parameters"]

    support = client.predict("退款多久能到账？", api_name="/support_chat")
    assert support["handoff"] is False and support["sources"][0]["id"] == "refund-time-zh"

    ids = {}
    for result, rating in ((text, "up"), (image, "down"), (support, "up")):
        saved = client.predict(result["output_id"], rating, "from the API test", api_name="/rate")
        assert saved["saved"] is True
        ids[saved["record_id"]] = result["output_id"]

    stored = read_stream(settings.data_dir / "feedback", "ratings")
    assert not stored.torn_tail and not stored.corrupt_lines
    by_id = {r["id"]: r for r in stored.records}
    assert set(ids) <= set(by_id)
    tabs = {by_id[rid]["tab"]: by_id[rid] for rid in ids}
    assert set(tabs) == {"text", "image", "support"}
    assert tabs["text"]["output"]["text"] == text["text"] and tabs["text"]["rating"] == "up"
    from aigc_demo.models.registry import llamacpp_works

    # the offline default runs the packaged GGUF on llama.cpp wherever llama.cpp works
    assert tabs["text"]["model"]["backend"] == ("llamacpp" if llamacpp_works() else "transformers")
    assert Path(tabs["image"]["output"]["path"]).exists() and tabs["image"]["params"]["seed"] == 11
    assert tabs["support"]["sources"][0]["id"] == "refund-time-zh"
    assert tabs["support"]["messages"][-1]["role"] == "assistant"


def test_api_live_handoff_round_trip(app, client):
    """Handoff → the customer writes to the ticket → an operator replies (token required) →
    the customer's poll shows it → resolve as a KB answer → CSAT stored, one per ticket."""
    from gradio_client.exceptions import AppError

    opened = client.predict("退款还没到账，我要转人工", api_name="/support_chat")
    ticket = opened["ticket"]
    assert opened["handoff"] and ticket in opened["answer"]
    sent = client.predict("订单 8812 的退款三天了还没到", [], ticket, api_name="/support_chat")
    assert sent["answer_mode"] == "human" and sent["sources"] == [] and sent["answer"]
    assert client.predict("还在吗", [], ticket, api_name="/support_chat")["answer"] == ""  # said once
    with pytest.raises(AppError, match="admin token"):
        client.predict(ticket, "不该发出", "wrong", api_name="/handoff_reply")
    queue = client.predict(ADMIN_TOKEN, "open", api_name="/handoff_queue")
    assert [t["ticket"] for t in queue] == [ticket] and queue[0]["unread"] == 2
    client.predict(ticket, "您好，退款已加急处理，今天内原路退回。", ADMIN_TOKEN, api_name="/handoff_reply")
    seen = client.predict(ticket, api_name="/support_updates")
    assert seen["status"] == "open" and [m["role"] for m in seen["messages"]] == ["customer", "customer", "operator"]
    assert seen["messages"][-1]["content"] == "您好，退款已加急处理，今天内原路退回。"
    with pytest.raises(AppError, match="admin token"):
        client.predict(ticket, "wrong", True, api_name="/handoff_resolve")
    done = client.predict(ticket, ADMIN_TOKEN, True, api_name="/handoff_resolve")
    assert done["status"] == "resolved" and done["kb_entry"] == f"resolved-{ticket}"
    assert client.predict(ticket, api_name="/support_updates")["status"] == "resolved"
    csat = client.predict(ticket, 5, "很快就解决了", api_name="/support_csat")
    assert csat["ticket"] == ticket and csat["csat"] == 5
    assert client.predict(ticket, 1, api_name="/support_csat")["csat"] == 5
    stored = read_stream(app[0].data_dir / "feedback", "csat").records
    assert [(r["ticket"], r["csat"]) for r in stored] == [(ticket, 5)]
    # Another customer's guess reads nothing: an unknown number is refused, like a short one.
    for guess in (ticket[:-1] + ("A" if ticket[-1] != "A" else "B"), ticket[:13]):
        with pytest.raises(AppError, match="No ticket"):
            client.predict(guess, api_name="/support_updates")


def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client):
    from gradio_client.exceptions import AppError

    cases = [
        ({"prompt": "   ", "api_name": "/generate_text"}, "prompt is empty"),
        ({"prompt": "x" * 4001, "api_name": "/generate_text"}, "the limit is 4000"),
        ({"prompt": "x", "width": 100, "api_name": "/generate_image"}, "width must be a multiple of 8, got 100"),
        ({"prompt": "x", "steps": 999, "api_name": "/generate_image"}, "steps must be between 1 and 50"),
        ({"message": "", "api_name": "/support_chat"}, "message is empty"),
    ]
    for kwargs, needle in cases:
        with pytest.raises(AppError) as info:
            client.predict(**kwargs)
        assert needle in str(info.value)
        assert "Traceback" not in str(info.value)
    with pytest.raises(AppError, match="Unknown output_id"):
        client.predict("does-not-exist", "up", api_name="/rate")
    with pytest.raises(AppError, match="rating must be 'up' or 'down'"):
        client.predict("x", "sideways", api_name="/rate")
    assert client.predict(api_name="/health")["status"] == "ok"


@pytest.mark.reliability
def test_concurrent_ratings_are_all_on_disk(app, client):
    settings, url = app
    from gradio_client import Client

    oid = client.predict("How do I reset my password?", api_name="/support_chat")["output_id"]
    # One Client (one session) per worker thread: 12 sessions rating at once, 60 ratings in all.
    local = threading.local()

    def rate(i: int) -> str:
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        return local.client.predict(oid, "up" if i % 2 else "down", f"c{i}", api_name="/rate")["record_id"]

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        record_ids = list(pool.map(rate, range(60)))
    stored = read_stream(settings.data_dir / "feedback", "ratings")
    assert set(record_ids) <= {r["id"] for r in stored.records} and len(set(record_ids)) == 60
    assert not stored.corrupt_lines and not stored.torn_tail


def test_health_reports_models_profile_and_version(app, client):
    health = client.predict(api_name="/health")
    assert health["profile"] == "offline" and health["version"]
    assert set(health["models"]) == {"text", "image", "embed"}
    assert health["status"] == "ok" and health["storage_failures"] == {}
    assert str(app[0].data_dir) not in str(health) and "data_dir" not in health  # public: no paths


def test_ui_only_endpoints_are_not_public(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert names == PUBLIC_ENDPOINTS
