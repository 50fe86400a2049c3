"""Shared fixtures: every data path in a temp dir, offline Hub, fake and tiny real backends.

Fakes follow the real backends' interfaces exactly (same method and argument names), so
services and UI are tested without model weights; the real embedded models are loaded
once per session into a session cache for the tests that need them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
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
from tests.fakes import FakeEmbedder, FakeImageBackend, FakeTextBackend


def _is_developer_setting(key: str) -> bool:
    return key.startswith(("AIGC_", "OPENAI_")) or key == "GRADIO_SERVER_PORT"


# The developer's own settings are gone before any fixture runs: a module- or session-scoped
# server starts before the per-test ``isolated_env`` and would otherwise read them.
for _key in [k for k in os.environ if _is_developer_setting(k)]:
    del os.environ[_key]

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
        if _is_developer_setting(key):  # a test may have set one
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
