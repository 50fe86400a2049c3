"""What a stranger with the public link can and cannot do, over plain HTTP.

A real server on a free port (fake models, so it is quick): no file outside the generated
images is served, the feedback data is not downloadable, a full queue answers "busy" and
the app keeps serving, and text a user typed never comes back as live HTML in an error.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path

import httpx
import pytest

from aigc_demo.config import Settings
from aigc_demo.models.registry import ModelRegistry
from tests.conftest import FakeEmbedder, FakeImageBackend, FakeTextBackend, free_port, serve_app

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    data = tmp_path_factory.mktemp("security-data")
    settings = Settings(
        profile="offline", data_dir=data, cache_dir=model_cache, port=free_port(), queue_max_size=2, preload=False,
        text_concurrency=1,  # one text generation at a time, so a few callers fill the queue
        admin_token="s3cret-token",
    )
    slow = FakeTextBackend(delay=0.05)  # 30 words ≈ 1.5 s: long enough to fill the queue
    registry = ModelRegistry(settings, preloaded={"text": slow, "image": FakeImageBackend(), "embed": FakeEmbedder()})
    with serve_app(settings, registry) as url:
        yield settings, url.rstrip("/")


def _call(base: str, api: str, *args, **kwargs) -> tuple[bool, object]:
    """(True, result) or (False, the error text) for one gradio_client call."""
    from gradio_client import Client

    try:
        return True, Client(base + "/", verbose=False, download_files=False).predict(*args, api_name=f"/{api}", **kwargs)
    except Exception as exc:  # noqa: BLE001 - the message is what the test checks
        return False, str(exc)


def test_no_file_outside_the_images_folder_is_served(server):
    settings, base = server
    (Path(settings.data_dir) / "feedback").mkdir(parents=True, exist_ok=True)
    ratings = Path(settings.data_dir) / "feedback" / "ratings.jsonl"
    ratings.write_text('{"secret": "a user comment"}\n')
    probes = [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=/proc/self/environ",
        "/file=/etc/passwd",
        f"/gradio_api/file={ratings}",
        f"/gradio_api/file={Path(settings.data_dir) / 'images' / '..' / 'feedback' / 'ratings.jsonl'}",
        "/gradio_api/file=app.py",
        "/gradio_api/file=aigc_demo/config.py",
    ]
    with httpx.Client(timeout=10) as http:
        for path in probes:
            response = http.get(base + path)
            assert response.status_code in (400, 403, 404, 405), (path, response.status_code)
            assert "root:" not in response.text and "a user comment" not in response.text, path
            assert "AIGC_ADMIN_TOKEN" not in response.text and "s3cret-token" not in response.text, path


def test_generated_images_are_served(server):
    settings, base = server
    ok, result = _call(base, "generate_image", "a red fox")
    assert ok, result
    with httpx.Client(timeout=10) as http:
        response = http.get(result["image"]["url"])
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_admin_token_is_never_in_the_page_or_config(server):
    _, base = server
    with httpx.Client(timeout=10) as http:
        for path in ("/", "/config", "/gradio_api/info"):
            response = http.get(base + path)
            assert response.status_code in (200, 404)
            assert "s3cret-token" not in response.text, path


def test_a_full_queue_says_busy_and_the_app_recovers(server):
    _, base = server
    # Text runs one at a time and the queue holds 2: of 8 simultaneous requests, some are
    # refused with a clear "busy" answer instead of waiting forever.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: _call(base, "generate_text", " ".join(["word"] * 30)), range(8)))
    refused = [text for ok, text in results if not ok]
    served = [r for ok, r in results if ok]
    assert refused and served, results
    assert all("Queue is full" in text for text in refused), refused
    time.sleep(0.5)
    ok, result = _call(base, "generate_text", "hello again")  # nothing stuck
    assert ok and "hello again" in result["text"]


def test_user_text_in_an_error_is_escaped(server):
    _, base = server
    payload = "<img src=x onerror=alert(1)>"
    ok, message = _call(base, "generate_text", "hi", preset=payload)  # an unknown preset, echoed in the message
    assert not ok and "Unknown preset" in message
    assert "<img" not in message and "&lt;img" in message


def test_the_rate_api_rejects_unknown_ids_without_writing(server):
    settings, base = server
    ok, message = _call(base, "rate", "../../etc/passwd", "up", "x")
    assert not ok and "Unknown output_id" in message
    ratings = Path(settings.data_dir) / "feedback" / "ratings.jsonl"
    assert "passwd" not in (ratings.read_text() if ratings.exists() else "")


def test_ui_only_handlers_are_not_callable(server):
    _, base = server
    with httpx.Client(timeout=10) as http:
        info = http.get(f"{base}/gradio_api/info").json()
    public = set(info["named_endpoints"])
    assert public == {"/generate_text", "/generate_image", "/support_chat", "/rate", "/health"}


def test_health_answers_while_the_queue_is_full(server):
    _, base = server
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            _call(base, "generate_text", "busy busy busy")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        refused = None
        for _ in range(20):  # wait until the queue turns users away...
            ok, result = _call(base, "generate_text", "one more")
            if not ok:
                refused = result
                break
        assert refused and "Queue is full" in refused
        with httpx.Client(timeout=10) as http:  # ...then a monitor still gets its answer
            response = http.get(f"{base}/healthz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["profile"] == "offline" and body["models"]["text"]["loaded"]
        assert body["data_dir"] and body["version"]
    finally:
        stop.set()
        for t in threads:
            t.join()
