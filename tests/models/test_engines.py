"""The text engines on real engines, not mocks: llama.cpp in-process on the packaged SmolLM2
GGUF, and the OpenAI-compatible engine against a real ``python -m llama_cpp.server``."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError, ModelLoadError
from aigc_demo.models import packaged
from aigc_demo.models.base import GenerationStats, TextBackend, TextRequest
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.models.text_llamacpp import LlamaCppTextBackend
from aigc_demo.models.text_openai import OpenAITextBackend
from tests.helpers import free_port, serve_app

requires_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="LLAMA.CPP IS NOT INSTALLED (make setup builds it)"
)
pytestmark = [requires_llamacpp, pytest.mark.slow]

ZH_PROMPTS = ["一款桂花乌龙茶", "今天天气很好，我们去公园散步吧。", "秋天的月亮"]


def _wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppTextBackend]:
    # A small window keeps the huge-prompt contract case quick (prompt processing is ~100 tokens/s here).
    backend = LlamaCppTextBackend("packaged:smollm2-135m-instruct", path=packaged.smollm2_gguf(), parallel=4, n_ctx=512)
    backend.load()
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on the packaged GGUF; yields its /v1 URL."""
    if importlib.util.find_spec("llama_cpp.server") is None:
        pytest.skip("LLAMA.CPP SERVER EXTRA IS NOT INSTALLED (requirements-dev.txt)")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("wb")
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(packaged.smollm2_gguf()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"{url}/models", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None  # died: stop waiting, fail below

        assert _wait_until(up, 90) and proc.poll() is None, Path(log.name).read_text(errors="replace")[-2000:]
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def remote(llama_server) -> OpenAITextBackend:
    backend = OpenAITextBackend("openai:smollm2", served_name="smollm2", base_url=llama_server, timeout_s=60)
    backend.load()
    return backend


# -- one contract for both engines ---------------------------------------------------------


@pytest.fixture(params=["llamacpp", "openai"])
def engine(request) -> TextBackend:
    return request.getfixturevalue("llama" if request.param == "llamacpp" else "remote")


@pytest.mark.parametrize("prompt", ["", "hello", "你好，世界", "x " * 3000, "<script>alert(1)</script>\u202e"])
def test_engine_contract(engine, prompt):
    assert isinstance(engine, TextBackend)
    stats = GenerationStats()
    request = TextRequest(messages=[{"role": "user", "content": prompt}], max_new_tokens=8, temperature=0.0, seed=1)
    if engine.backend == "openai" and len(prompt) > 5000:  # the server's window; only it can count its tokens
        with pytest.raises(AigcError, match="too long"):
            list(engine.stream(request, stats))
        return
    chunks = list(engine.stream(request, stats))
    assert all(isinstance(c, str) for c in chunks) and "\ufffd" not in "".join(chunks)
    assert stats.finish_reason in {"length", "eos"}  # a real model may end its answer at once
    assert stats.completion_tokens == 8 if stats.finish_reason == "length" else stats.completion_tokens < 8
    assert stats.total_ms > 0 and (stats.ttft_ms is None) == (stats.completion_tokens == 0)


def test_engine_stop_string(engine):
    request = TextRequest(
        messages=[{"role": "user", "content": "Count from 1 to 20."}], max_new_tokens=60, temperature=0
    )
    full = "".join(engine.stream(request))
    assert len(full) > 12
    stop = full[6:9]
    request.stop = [stop]
    stats = GenerationStats()
    cut = "".join(engine.stream(request, stats))
    assert cut == full[: full.find(stop)] and stats.finish_reason == "stop"


def test_engine_same_seed_same_sample(engine):
    request = TextRequest(prompt="Once upon a time", max_new_tokens=16, temperature=1.0, top_p=0.9, seed=5)
    assert "".join(engine.stream(request)) == "".join(engine.stream(request))


def test_engine_closing_the_stream_cancels(engine):
    stats = GenerationStats()
    gen = engine.stream(
        TextRequest(prompt="Once", max_new_tokens=200, min_new_tokens=200, temperature=1.0, seed=2), stats
    )
    next(gen)
    gen.close()  # what Gradio does when the user presses Stop
    assert stats.finish_reason == "cancelled" and stats.completion_tokens < 200
    # and the engine serves the next request
    assert "".join(engine.stream(TextRequest(prompt="Hi", max_new_tokens=4, temperature=0)))


# -- llama.cpp -----------------------------------------------------------------------------


def test_llamacpp_answers_from_the_packaged_gguf(llama):
    request = TextRequest(messages=[{"role": "user", "content": "What is 2 + 2?"}], max_new_tokens=24, temperature=0)
    answer = "".join(llama.stream(request))
    assert "4" in answer
    assert llama.has_chat_template and llama.precision == "Q4_1"


def test_llamacpp_continues_a_final_assistant_message(llama):
    """The "continue" contract: the answer so far is extended, not answered as a new turn."""
    asked = {"role": "user", "content": "Count from one to ten in English words, separated by commas."}
    request = TextRequest(
        messages=[asked, {"role": "assistant", "content": "one, two, three,"}], max_new_tokens=8, temperature=0
    )
    prompt = llama._model.detokenize(llama.encode(request)).decode()
    assert prompt.endswith("assistant\none, two, three,")  # no end-of-turn after the words so far
    assert "four" in "".join(llama.stream(request))
    zh = [
        {"role": "user", "content": "用中文从一数到十，用逗号分隔。"},
        {"role": "assistant", "content": "一，二，三，"},
    ]
    assert "".join(llama.stream(TextRequest(messages=zh, max_new_tokens=4, temperature=0))).startswith("四")


def test_llamacpp_batches_a_newcomer_instead_of_queueing_it(llama):
    """A short answer that arrives while a long one streams finishes first: both decode in one batch."""
    long_stats = GenerationStats()
    long_gen = llama.stream(
        TextRequest(prompt="Once", max_new_tokens=300, min_new_tokens=300, temperature=0), long_stats
    )
    next(long_gen)  # the long answer is decoding
    short = "".join(llama.stream(TextRequest(prompt="Hello", max_new_tokens=5, min_new_tokens=5, temperature=0)))
    assert short and long_stats.completion_tokens < 300  # the long one has not finished
    rest = "".join(long_gen)
    assert rest and long_stats.completion_tokens == 300 and long_stats.finish_reason == "length"


def test_llamacpp_request_waits_for_a_free_slot_and_reuses_its_cache():
    """With every slot busy a request waits (nothing is evicted); then it reuses the slot's prompt cache."""
    backend = LlamaCppTextBackend("one-slot", path=packaged.smollm2_gguf(), parallel=1, n_ctx=512)
    backend.load()
    try:
        order: list[str] = []
        chat = [{"role": "user", "content": "Tell me about tea."}]
        first = backend.stream(TextRequest(messages=chat, max_new_tokens=60, min_new_tokens=60, temperature=0))
        next(first)

        def second() -> None:
            for _ in backend.stream(TextRequest(messages=chat, max_new_tokens=5, temperature=0)):
                order.append("second")
                return

        thread = threading.Thread(target=second)
        thread.start()
        for _ in first:
            pass
        order.append("first done")
        thread.join(60)
        assert order == ["first done", "second"]
        cached = backend._slots[0].cached
        prompt = backend.encode(TextRequest(messages=chat))
        assert cached[: len(prompt)] == prompt  # the slot kept the conversation for the next turn
    finally:
        backend.close()


def test_llamacpp_warms_idle_slots_with_the_common_chat_prefix():
    backend = LlamaCppTextBackend("warm", path=packaged.smollm2_gguf(), parallel=3, n_ctx=256)
    backend.load()
    try:
        prefix = backend._prefix
        chat = backend.encode(TextRequest(messages=[{"role": "user", "content": "你好"}]))
        assert len(prefix) > 5 and chat[: len(prefix)] == prefix  # every plain chat starts with it
        assert _wait_until(lambda: all(slot.cached == prefix for slot in backend._slots))
        text = "".join(
            backend.stream(TextRequest(messages=[{"role": "user", "content": "你好"}], max_new_tokens=8, temperature=0))
        )
        assert text and "\ufffd" not in text
        # A conversation with its own system prompt keeps its cache through idle warm-ups,
        # so its next turn computes only the new words.
        own = TextRequest(
            messages=[{"role": "system", "content": "你是茶馆店员。"}, {"role": "user", "content": "推荐一款绿茶"}],
            max_new_tokens=8,
            temperature=0,
        )
        "".join(backend.stream(own))
        asked = backend.encode(own)
        time.sleep(0.5)  # idle: the warmer runs
        assert any(slot.cached[: len(asked)] == asked for slot in backend._slots)
    finally:
        backend.close()


def test_llamacpp_long_prompt_is_cut_to_the_window():
    backend = LlamaCppTextBackend("small", path=packaged.smollm2_gguf(), parallel=1, n_ctx=256)
    backend.load()
    try:
        stats = GenerationStats()
        text = "".join(backend.stream(TextRequest(prompt="word " * 2000, max_new_tokens=16, temperature=0), stats))
        assert stats.prompt_tokens <= 256 - 16 and 1 <= stats.completion_tokens <= 16 and "\ufffd" not in text
    finally:
        backend.close()


@pytest.mark.parametrize("amx", [True, False])
def test_a_llamacpp_build_with_amx_kernels_loads_without_the_repacked_buffers(monkeypatch, amx):
    # The AMX kernels die of SIGILL on the first prompt (seen on a Xeon with AMX under KVM);
    # they are reached only through the extra weight buffers, so those stay off for such a build.
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    shown = info.replace(b"AMX_INT8 = 1 | ", b"") + (b"AMX_INT8 = 1 | " if amx else b"")
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: shown)
    backend = LlamaCppTextBackend("small", path=packaged.smollm2_gguf(), parallel=1, n_ctx=256)
    used = {}
    real = llama_cpp._internals.LlamaModel

    def spy(*, path_model, params, verbose):
        used["extra"] = params.use_extra_bufts
        return real(path_model=path_model, params=params, verbose=verbose)

    monkeypatch.setattr(llama_cpp._internals, "LlamaModel", spy)
    backend.load()
    try:
        assert used["extra"] is (not amx)
        text = "".join(backend.stream(TextRequest(prompt="word " * 100, max_new_tokens=4, temperature=0)))
        assert text
    finally:
        backend.close()


def test_llamacpp_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        LlamaCppTextBackend("gguf:x", path=tmp_path / "nope.gguf").load()


@pytest.fixture(scope="module")
def llamacpp_text(tmp_path_factory, model_cache):
    """One text service on the packaged model through llama.cpp, shared by the preset tests
    (one model load and one slot warm-up instead of one per preset)."""
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.services.text import TextService

    settings = Settings(text_backend="llamacpp", data_dir=tmp_path_factory.mktemp("presets"), cache_dir=model_cache)
    registry = ModelRegistry(settings)
    yield settings, registry, TextService(registry, FeedbackService.from_settings(settings), settings)
    if registry.is_loaded("text"):
        registry.get("text").close()


@pytest.mark.parametrize("preset", ["marketing", "translate", "poem"])
def test_chinese_presets_never_show_a_replacement_char(preset, llamacpp_text):
    """Cut at every small token limit, sampled: no U+FFFD on screen, in the result or in the record."""
    settings, registry, service = llamacpp_text
    for max_new_tokens, seed in ((5, 0), (7, 1), (11, 2), (40, 3)):
        for prompt in ZH_PROMPTS:
            updates = list(
                service.stream(prompt, preset=preset, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed)
            )
            assert all("\ufffd" not in u.text for u in updates)
            assert registry.info("text")["backend"] == "llamacpp"
    events = (settings.data_dir / "feedback" / "events.jsonl").read_text(encoding="utf-8")
    assert "\ufffd" not in events and "\\ufffd" not in events.lower()


# -- the OpenAI-compatible engine ----------------------------------------------------------


def test_openai_continue_mode_uses_completions(remote):
    stats = GenerationStats()
    text = "".join(
        remote.stream(TextRequest(prompt="The capital of France is", max_new_tokens=8, temperature=0), stats)
    )
    assert text.strip() and stats.completion_tokens >= 1


def test_openai_server_down_is_a_clear_message():
    backend = OpenAITextBackend(
        "openai:m", served_name="m", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k-123"
    )
    backend.load()
    with pytest.raises(AigcError) as info:
        "".join(backend.stream(TextRequest(prompt="hi", max_new_tokens=4)))
    assert "not reachable" in info.value.message and "k-123" not in info.value.message
    assert "无法连接" in info.value.localized("zh")


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a stuck inference server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_openai_slow_server_times_out_with_a_clear_message():
    with _silent_server() as port:
        backend = OpenAITextBackend("openai:m", served_name="m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=1)
        backend.load()
        with pytest.raises(AigcError, match="did not answer within 1 s"):
            "".join(backend.stream(TextRequest(messages=[{"role": "user", "content": "hi"}], max_new_tokens=4)))


def test_openai_without_a_base_url_names_the_setting():
    with pytest.raises(ModelLoadError, match="AIGC_OPENAI_BASE_URL"):
        OpenAITextBackend("openai:m", served_name="m", base_url="").load()


def test_standard_openai_variables_are_honoured(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "k-standard")
    settings = Settings()
    assert settings.openai_base_url == "http://127.0.0.1:1/v1"
    assert settings.openai_api_key.get_secret_value() == "k-standard" and "k-standard" not in repr(settings)
    monkeypatch.setenv("AIGC_OPENAI_BASE_URL", "http://127.0.0.1:2/v1")
    assert Settings().openai_base_url == "http://127.0.0.1:2/v1"  # ours wins


@pytest.mark.integration
def test_text_tab_through_a_real_openai_server_keeps_the_key_out(llama_server, tmp_path, caplog):
    """The whole app on the OpenAI engine: answer, rating, record; the key appears nowhere."""
    from gradio_client import Client

    key = "sk-" + "test" * 6  # built at run time: no key-shaped literal in the repository
    settings = Settings(
        data_dir=tmp_path / "data",
        port=free_port(),
        text_model="openai:smollm2",
        openai_base_url=llama_server,
        openai_api_key=key,
        preload=False,
    )
    with serve_app(settings) as url:
        client = Client(url, verbose=False)
        result = client.predict("你好，请介绍一下你自己。", max_new_tokens=24, temperature=0, api_name="/generate_text")
        assert result["text"] and result["model"] == "openai:smollm2" and result["done"] is True
        assert "\ufffd" not in result["text"]
        saved = client.predict(result["output_id"], "up", "", api_name="/rate")
        assert saved["saved"] is True
        import httpx

        health = httpx.get(url + "healthz", timeout=10).json()
    assert health["models"]["text"]["backend"] == "openai"
    assert health["models"]["text"]["server"].startswith("http://127.0.0.1")
    stored = "".join(p.read_text(encoding="utf-8") for p in (settings.data_dir / "feedback").glob("*.jsonl"))
    record = [json.loads(line) for line in stored.splitlines() if '"rating"' in line][-1]
    assert record["model"]["backend"] == "openai"
    for place in (stored, json.dumps(health), caplog.text):
        assert key not in place


@pytest.mark.integration
def test_queue_lets_several_testers_stream_at_once(tmp_path):
    """The queue must not serialise text requests to one: the engine decides what runs together."""
    from gradio_client import Client

    from tests.fakes import FakeEmbedder, FakeImageBackend, FakeTextBackend

    running, peak, lock = [0], [0], threading.Lock()

    class Counting(FakeTextBackend):
        parallel = 8

        def stream(self, request, stats=None):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                yield from super().stream(request, stats)
            finally:
                with lock:
                    running[0] -= 1

    settings = Settings(data_dir=tmp_path / "data", port=free_port(), preload=False)
    registry = ModelRegistry(
        settings,
        preloaded={
            "text": Counting(reply="one two three four five six", delay=0.15),
            "image": FakeImageBackend(),
            "embed": FakeEmbedder(),
        },
    )
    with serve_app(settings, registry) as url:
        client = Client(url, verbose=False)
        jobs = [client.submit(f"q{i}", api_name="/generate_text") for i in range(4)]
        results = [job.result(timeout=60) for job in jobs]
    assert all(r["done"] for r in results)
    assert peak[0] >= 3, peak[0]


def test_llamacpp_decodes_below_the_server_threads(llama):
    """Issue 25.12: the decode loop (and the thread team it starts) yields to request threads."""
    import os

    from aigc_demo.models.compute import GENERATION_NICE

    tid = llama._thread.native_id
    assert os.getpriority(os.PRIO_PROCESS, tid) >= GENERATION_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < GENERATION_NICE
