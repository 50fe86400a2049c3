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
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.registry import ModelRegistry
from tests.fakes import FakeEmbedder, FakeImageBackend, FakeTextBackend
from tests.helpers import PUBLIC_ENDPOINTS, free_port, serve_app

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    data = tmp_path_factory.mktemp("security-data")
    settings = Settings(
        profile="offline",
        data_dir=data,
        cache_dir=model_cache,
        port=free_port(),
        queue_max_size=2,
        preload=False,
        text_concurrency=1,  # one text generation at a time, so a few callers fill the queue
        admin_token="s3cret-token",
        upload_quota_mb=1,  # small budgets, so a test can spend them
        upload_total_mb=3,
        proxy_hops=1,  # as on a Space: one proxy appends the caller's address
    )
    slow = FakeTextBackend(delay=0.05)  # 0.05 s a word: a dozen words keep the queue full
    registry = ModelRegistry(settings, preloaded={"text": slow, "image": FakeImageBackend(), "embed": FakeEmbedder()})
    with serve_app(settings, registry) as url:
        yield settings, url.rstrip("/")


_clients = threading.local()


def _client(base: str):
    """This thread's gradio_client for ``base``: one session per thread, made once.

    A Client fetches the app's config and API info when it is made; building one per call
    cost more than the calls (and starved the server of CPU while threads hammered it).
    Calls from one thread are sequential, so each thread is still one ordinary visitor.
    """
    from gradio_client import Client

    made = getattr(_clients, "by_base", None)
    if made is None:
        made = _clients.by_base = {}
    if base not in made:
        made[base] = Client(base + "/", verbose=False, download_files=False)
    return made[base]


def _wait_until(condition, timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def _call(base: str, api: str, *args, **kwargs) -> tuple[bool, object]:
    """(True, result) or (False, the error text) for one gradio_client call."""
    try:
        return True, _client(base).predict(*args, api_name=f"/{api}", **kwargs)
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
    _settings, base = server
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
    # refused with a clear "busy" answer instead of waiting forever. Eight visitors connect
    # first, then all send at once: the burst lands well within one answer (~0.7 s).
    together = threading.Barrier(8)

    def visitor(i: int) -> tuple[bool, object]:
        _client(base)
        together.wait(30)
        return _call(base, "generate_text", " ".join(["word"] * 12))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(visitor, range(8)))
    refused = [text for ok, text in results if not ok]
    served = [r for ok, r in results if ok]
    assert refused and served, results
    assert all("The generator is busy" in text for text in refused), refused
    # Every call above has returned, so nothing is left waiting: the next one goes straight through.
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
    assert public == PUBLIC_ENDPOINTS


def test_health_answers_while_the_queue_is_full(server):
    _, base = server
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            if not _call(base, "generate_text", "busy busy busy")[0]:
                stop.wait(0.02)  # a visitor retrying, not a CPU-bound loop that starves the server

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        refused = []

        def turned_away() -> bool:  # wait until the queue turns users away...
            ok, result = _call(base, "generate_text", "one more")
            if not ok:
                refused.append(result)
            return not ok

        assert _wait_until(turned_away)
        refused = refused[0]
        assert refused and "The generator is busy" in refused and "生成服务繁忙" in refused
        with httpx.Client(timeout=10) as http:  # ...then a monitor still gets its answer
            response = http.get(f"{base}/healthz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["profile"] == "offline" and body["models"]["text"]["loaded"]
        assert body["version"]
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_a_full_generation_queue_refuses_no_rating_support_answer_or_health_call(server):
    """Generation has its own cap: with it full, every rating, support answer and /health
    call still goes through (they used to be refused with the generations)."""
    _, base = server
    ok, first = _call(base, "generate_text", "rate me later")
    assert ok
    stop = threading.Event()
    refusals: list[str] = []

    def hammer():
        while not stop.is_set():
            ok, result = _call(base, "generate_text", "busy busy busy")
            if not ok:
                refusals.append(str(result))
                stop.wait(0.02)  # a visitor retrying, not a CPU-bound loop that starves the server

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        _wait_until(lambda: bool(refusals))  # until generation is turned away
        assert refusals and all("busy" in r for r in refusals)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            rated = list(pool.map(lambda i: _call(base, "rate", first["output_id"], "up", f"第 {i} 次"), range(8)))
            answered = list(pool.map(lambda i: _call(base, "support_chat", "退款多久能到账？"), range(4)))
            healthy = list(pool.map(lambda i: _call(base, "health"), range(4)))
        assert all(ok and r["saved"] for ok, r in rated), [r for r in rated if not r[0]]
        assert all(ok and r["answer"] for ok, r in answered), answered
        assert all(ok for ok, _ in healthy), healthy
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_one_client_cannot_fill_the_generation_queue(server):
    """A fair share: one session (one gradio_client) gets AIGC_SESSION_QUEUE waiting requests."""
    _, base = server
    from gradio_client import Client

    client = Client(base + "/", verbose=False, download_files=False)
    jobs = [client.submit(f"第 {i} 个请求", api_name="/generate_text") for i in range(6)]
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(("ok", job.result(timeout=60)))
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            outcomes.append(("refused", str(exc)))
    refused = [o for kind, o in outcomes if kind == "refused"]
    assert refused and all("requests waiting" in r and "排队" in r for r in refused), outcomes
    assert sum(kind == "ok" for kind, _ in outcomes) >= 2


def test_unknown_endpoints_and_oversized_bodies_get_a_clear_answer(server):
    _, base = server
    with httpx.Client(timeout=30) as http:
        unknown = http.post(f"{base}/gradio_api/call/nosuch", json={"data": []})
        assert unknown.status_code == 404 and "Unknown endpoint" in unknown.json()["error"]
        big = http.post(f"{base}/gradio_api/call/generate_text", json={"data": ["字" * 1_200_000]})
        assert big.status_code == 413 and "请求过大" in big.json()["error"]
        assert http.get(f"{base}/healthz").status_code == 200  # and the server keeps serving


def test_the_queue_free_routes_reach_no_queued_handler_and_leak_nothing(server, capfd):
    """Issue 25.7: /gradio_api/run and /gradio_api/api skipped the queue, its caps and the error shaping."""
    settings, base = server
    with httpx.Client(timeout=30) as http:
        config = http.get(f"{base}/config").json()
        deps = config["dependencies"]
        queued = next(d for d in deps if d.get("api_name") == "generate_text")
        for route in ("run", "api"):
            direct = http.post(f"{base}/gradio_api/{route}/generate_text", json={"data": ["你好"]})
            assert direct.status_code == 404 and "/gradio_api/call/generate_text" in direct.json()["error"]
            by_index = http.post(f"{base}/gradio_api/{route}/predict", json={"data": [], "fn_index": queued["id"]})
            assert by_index.status_code == 404 and "绕过排队" in by_index.json()["error"]
        # A queue-free handler (the page's instant ones) with a wrong argument count: a clear 422,
        # not Gradio's 500 {"error": null} with the raw inputs printed to the log.
        instant = next(d for d in deps if d.get("queue") is False and d.get("inputs"))
        wrong = http.post(
            f"{base}/gradio_api/run/predict", json={"data": ["s3cret-token"] * 9, "fn_index": instant["id"]}
        )
        assert wrong.status_code == 422 and "arguments" in wrong.json()["error"]
        # The right count, but a value a component refuses (a preset that is no choice): the
        # replay got 500 {"error": null} and the value quoted in the log.
        kinds = {c["id"]: c.get("type") for c in config["components"]}
        picky = [
            d for d in deps if d.get("queue") is False and any(kinds.get(i) == "dropdown" for i in d.get("inputs", []))
        ]
        assert picky
        for dep in picky:
            bad = http.post(
                f"{base}/gradio_api/run/predict",
                json={"data": ["s3cret-token"] * len(dep["inputs"]), "fn_index": dep["id"]},
            )
            assert bad.status_code in (200, 422), bad.text
            if bad.status_code == 422:
                assert "输入无效" in bad.json()["error"]
        nosuch = http.post(f"{base}/gradio_api/run/nosuch", json={"data": []})
        assert nosuch.status_code == 404
    assert "s3cret-token" not in capfd.readouterr().err
    assert list((Path(settings.data_dir) / "feedback").glob("events*.jsonl")) == [] or not any(
        e.get("prompt") == "你好" for e in FeedbackService(settings.data_dir).read("events").records
    )


def test_anonymous_uploads_have_an_hourly_quota_per_client_and_in_total(server):
    """Issue 25.11: 9 MB uploads were accepted at 55 MB/s with no quota."""
    _, base = server

    def upload(client: str, size: int) -> httpx.Response:
        files = {"files": ("kb.txt", b"x" * size, "text/plain")}
        with httpx.Client(timeout=30) as http:
            return http.post(f"{base}/gradio_api/upload", files=files, headers={"X-Forwarded-For": client})

    assert upload("10.0.0.1", 600_000).status_code == 200
    refused = upload("10.0.0.1", 600_000)  # over this client's 1 MB an hour
    assert refused.status_code == 429 and "上传已达上限" in refused.json()["error"]
    # What the client writes left of the proxy's entry is no fresh budget (the replay got +27 MB so).
    forged = upload("203.0.113.7, 10.0.0.1", 600_000)
    assert forged.status_code == 429
    assert all(upload(f"10.0.0.{i}", 900_000).status_code == 200 for i in (2, 3))
    over_total = upload("10.0.0.9", 900_000)  # a fresh address, but everyone together is past 3 MB
    assert over_total.status_code == 429 and "3 MB" in over_total.json()["error"]


def test_no_view_loads_remote_images(server):
    """Issue 25.10: Markdown from models, KB articles or customers cannot make a browser fetch a remote URL."""
    _, base = server
    with httpx.Client(timeout=10) as http:
        for path in ("/", "/gradio_api/info", "/healthz"):
            policy = http.get(base + path).headers.get("content-security-policy", "")
            assert "img-src 'self' data: blob:" in policy and "media-src 'self'" in policy, path


@pytest.mark.parametrize(
    ("hops", "header", "client"),
    [
        (0, b"1.2.3.4", "127.0.0.1"),  # no proxy in front: the header is the caller's own words
        (1, b"1.2.3.4, 10.0.0.1", "10.0.0.1"),  # one proxy appended the address it saw
        (2, b"1.2.3.4, 10.0.0.1, 10.9.9.9", "10.0.0.1"),
        (1, b"", "127.0.0.1"),
    ],
)
def test_the_upload_quota_keys_on_the_address_our_proxies_saw(hops, header, client):
    from aigc_demo.ui.admission import _client_of

    assert _client_of({"client": ("127.0.0.1", 5000)}, {b"x-forwarded-for": header}, hops) == client


def test_with_no_proxy_a_forged_forwarded_for_is_no_new_client(tmp_path, model_cache, monkeypatch):
    """The re-check: uvicorn took X-Forwarded-For from 127.0.0.1 as the caller's address, so a
    caller behind a local tunnel bought a fresh upload budget with each forged header."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # restored after the test
    settings = Settings(
        profile="offline", data_dir=tmp_path, cache_dir=model_cache, port=free_port(), preload=False,
        upload_quota_mb=1, upload_total_mb=50, proxy_hops=0,
    )  # fmt: skip
    registry = ModelRegistry(settings, preloaded={"text": FakeTextBackend(), "embed": FakeEmbedder()})
    with serve_app(settings, registry) as url, httpx.Client(timeout=30) as http:
        codes = [
            http.post(
                f"{url}gradio_api/upload",
                files={"files": ("kb.txt", b"x" * 400_000, "text/plain")},
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes[:2] == [200, 200] and codes[3] == 429
