"""Shared fixtures: every data path in a temp dir, offline Hub, fake and tiny real backends.

Fakes follow the real backends' interfaces exactly (same method and argument names), so
services and UI are tested without model weights; the real embedded models are loaded
once per session into a session cache for the tests that need them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from aigc_demo.config import Settings
from aigc_demo.models import packaged
from aigc_demo.models.base import Embedder, GenerationStats, ImageBackend, TextBackend, TextRequest, split_prefill

# The API a client may call; every other handler is UI-only (api_visibility="private").
PUBLIC_ENDPOINTS = {
    "/generate_text",
    "/generate_image",
    "/support_chat",
    "/rate",
    "/health",
    "/arena_text",
    "/arena_image",
    "/arena_vote",
}

# What `make setup` prepared (python -m aigc_demo prepare): the default cache folder.
PREPARED_CACHE = Path(__file__).resolve().parents[1] / "data" / "cache"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One cache of converted / built embedded models for the whole session.

    Seeded with what `make setup` already built: the knowledge-base embeddings (each file
    named by the KB's content fingerprint and the model, so exactly what a test would
    compute: about 9 s of E5 per KB otherwise) and the tiny image pipeline (versioned, built
    from a fixed seed). Tests that index another KB, check that ``prepare`` writes these
    files, or build the pipeline (test_tiny_image.py) still compute their own.
    """
    cache = tmp_path_factory.mktemp("model-cache")
    for path in PREPARED_CACHE.glob("kb-*.npy"):
        shutil.copyfile(path, cache / path.name)
    for folder in PREPARED_CACHE.glob("tiny-sd-v*"):  # the app reads only its own version
        shutil.copytree(folder, cache / folder.name)
    return cache


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch, model_cache):
    for key in list(os.environ):
        if key.startswith(("AIGC_", "OPENAI_")) or key == "GRADIO_SERVER_PORT":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIGC_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("AIGC_PROFILE", "offline")
    monkeypatch.setenv("AIGC_PRELOAD", "false")  # tests load models when they need them
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings()


class FakeTextBackend(TextBackend):
    """Echoes a deterministic reply word by word; honours the TextRequest contract."""

    backend = "fake"
    model_id = "fake-text"
    precision = ""
    parallel = 1

    def __init__(self, reply: str | None = None, delay: float = 0.0) -> None:
        self.reply = reply
        self.delay = delay
        self.requests: list[TextRequest] = []

    def load(self) -> None:
        pass

    def stream(self, request: TextRequest, stats: GenerationStats | None = None) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        self.requests.append(request)
        messages, prefill = split_prefill(request.messages or [])
        source = request.prompt if request.prompt is not None else (messages or [{}])[-1].get("content", "")
        reply = self.reply if self.reply is not None else f"Echo ({request.seed}): {source}"
        all_words = reply.split(" ")
        if prefill:  # continue the answer: the words after the ones already written
            all_words = all_words[len(prefill.split(" ")) :] or ["(end)"]
        words = all_words[: request.max_new_tokens]
        # As real engines report it: the whole reply fits → "stop" (end of text); cut → "length".
        stats.finish_reason = "stop" if len(words) == len(all_words) else "length"
        stats.prompt_tokens = len(source.split())
        start = time.perf_counter()
        text = ""
        for i, word in enumerate(words):
            if self.delay:
                time.sleep(self.delay)
            chunk = word if i == 0 and not prefill else " " + word
            text += chunk
            stats.completion_tokens += 1
            if stats.ttft_ms is None:
                stats.ttft_ms = (time.perf_counter() - start) * 1000
            stop_at = min((text.find(s) for s in request.stop if s and s in text), default=-1)
            if stop_at >= 0:
                stats.finish_reason = "stop"
                yield chunk[: len(chunk) - (len(text) - stop_at)]
                break
            yield chunk
        stats.total_ms = (time.perf_counter() - start) * 1000


class FakeImageBackend(ImageBackend):
    backend = "fake"
    placeholder = True

    def load(self) -> None:
        pass

    def generate(
        self, *, prompt, negative_prompt="", steps, guidance_scale, width, height, seed, num_images=1, on_step=None
    ):
        from PIL import Image

        for step in range(1, steps + 1):
            if on_step is not None:
                on_step(step, steps)
        images = []
        for i in range(num_images):
            digest = hashlib.sha256(f"{prompt}|{seed + i}".encode()).digest()
            images.append(Image.new("RGB", (width, height), tuple(digest[:3])))
        return images


class FakeEmbedder(Embedder):
    """Hashed bag of retrieval tokens: deterministic, language-agnostic, no weights."""

    backend = "fake"
    model_id = "fake-embedder"
    dimension = 256

    def load(self) -> None:
        pass

    def embed(self, texts: list[str]) -> np.ndarray:
        from aigc_demo.services.support.retrieval import tokenize

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                out[row, int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture
def fake_registry(settings):
    """Fakes for every model: the text kind's default and the other text models offered
    (the Arena pits them against each other)."""
    from aigc_demo.models.registry import ModelRegistry

    others = {("text", m): FakeTextBackend() for m in settings.text_model_choices if m != settings.model_for("text")}
    return ModelRegistry(
        settings,
        preloaded={"text": FakeTextBackend(), "image": FakeImageBackend(), "embed": FakeEmbedder(), **others},
    )


@pytest.fixture
def services(settings, fake_registry):
    from aigc_demo.app_services import build_services

    return build_services(settings, registry=fake_registry)


@contextlib.contextmanager
def serve_app(settings: Settings, registry=None) -> Iterator[str]:
    """The real app on ``settings.port`` for the duration of the block; yields its URL."""
    from aigc_demo.app_services import build_services
    from aigc_demo.ui.demo import create_demo, launch_options

    services = build_services(settings, registry=registry)
    demo = create_demo(settings, services=services)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(settings, demo, services))
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        demo.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m aigc_demo ARGS`` in this process: its exit code, stdout and stderr.

    What the module's ``__main__`` guard does (``raise SystemExit(main())``) without a new
    interpreter (~0.15 s of imports each, more under load). Settings come from the
    environment, as in a subprocess: ``isolated_env`` points them at the test's temp dir.
    test_arena.py and test_export.py still run the real ``python -m aigc_demo``.
    """
    from aigc_demo.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse and settings_or_exit exit like the real CLI
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    return subprocess.CompletedProcess(["python", "-m", "aigc_demo", *args], code, out.getvalue(), err.getvalue())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Make the pure GGUF parsing steps cheap while a GGUF is converted.

    transformers opens the same GGUF file several times in one conversion (tokenizer,
    config, weights: each a full ``GGUFReader`` parse of its 49k-token vocabulary) and
    rebuilds the same tensor-name map for every sub-module (~400 times). While the block runs:

    - the first reader of a path is handed back again (read-only mapping);
    - that reader maps the file as a plain ``ndarray`` view of the same ``np.memmap``:
      gguf slices it ~250k times while parsing and a ``memmap`` subclass costs a Python
      ``__array_finalize__`` per slice (same bytes, same values, ~2 s less);
    - the tensor-name map is cached per (arch, layers).

    The conversion's output is byte-for-byte the same (checked with sha256 of every file);
    the app's ``packaged.convert_gguf`` still runs end to end with the real loaders.
    """
    import types

    import gguf
    import gguf.gguf_reader

    real_reader = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    class _Numpy(types.ModuleType):  # numpy for gguf_reader, but memmap gives a plain ndarray view
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def memmap(*args, **kwargs):
            return np.memmap(*args, **kwargs).view(np.ndarray)

    def reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gguf, "GGUFReader", reader)
        patch.setattr(gguf.gguf_reader, "np", _Numpy("numpy"))
        patch.setattr(gguf, "get_tensor_name_map", functools.lru_cache(maxsize=None)(gguf.get_tensor_name_map))
        yield


@pytest.fixture(scope="session")
def smollm_dir(model_cache):
    """The packaged SmolLM2 GGUF converted once (also exercises the conversion)."""
    with _gguf_parsed_once():
        return packaged.resolve("packaged:smollm2-135m-instruct", model_cache)


@pytest.fixture(scope="session")
def tiny_llm_dir(smollm_dir, tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llm")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (smollm_dir / name).exists():
            shutil.copy(smollm_dir / name, out / name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


LOUD_SKIPS = {
    "CHROMIUM IS NOT INSTALLED": "REAL-BROWSER TESTS SKIPPED: Chromium is not installed",
    "LLAMA.CPP": "LLAMA.CPP ENGINE TESTS SKIPPED: llama-cpp-python is not installed (make setup builds it)",
}


def pytest_terminal_summary(terminalreporter):
    """Say it loudly when the real-browser or real-engine tests could not run."""
    said = set()
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for marker, banner in LOUD_SKIPS.items():
            if marker in reason and marker not in said:
                said.add(marker)
                terminalreporter.write_sep("!", banner, red=True, bold=True)
