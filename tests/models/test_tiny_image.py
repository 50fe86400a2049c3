"""Tests for the offline placeholder text-to-image pipeline builder."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np
import pytest

from aigc_demo.models.tiny_image import (
    MARKER_FILENAME,
    TINY_PIPELINE_VERSION,
    build_tiny_pipeline,
    is_complete,
)


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipe")


@pytest.fixture(scope="module")
def pipe(built_dir):
    from diffusers import AutoPipelineForText2Image

    p = AutoPipelineForText2Image.from_pretrained(str(built_dir))
    p.set_progress_bar_config(disable=True)
    return p


def _generate(pipe, seed: int, *, size: int = 64, steps: int = 2, **kw):
    import torch

    return pipe(
        prompt="a red fox",
        negative_prompt="blurry",
        num_inference_steps=steps,
        guidance_scale=5.0,
        width=size,
        height=size,
        generator=torch.Generator("cpu").manual_seed(seed),
        **kw,
    ).images[0]


def test_build_layout(built_dir):
    assert (built_dir / "model_index.json").is_file()
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (built_dir / sub).is_dir(), sub
    marker = json.loads((built_dir / MARKER_FILENAME).read_text(encoding="utf-8"))
    assert marker["version"] == TINY_PIPELINE_VERSION
    assert is_complete(built_dir)
    # No temporary siblings left behind.
    assert [p.name for p in built_dir.parent.iterdir()] == [built_dir.name]
    # Small on disk.
    size = sum(f.stat().st_size for f in built_dir.rglob("*") if f.is_file())
    assert size < 20 * 1024 * 1024


def test_build_is_idempotent(built_dir):
    marker = built_dir / MARKER_FILENAME
    before = marker.stat().st_mtime_ns
    weights = built_dir / "unet" / "diffusion_pytorch_model.safetensors"
    weights_before = weights.stat().st_mtime_ns
    assert build_tiny_pipeline(built_dir) == built_dir
    assert marker.stat().st_mtime_ns == before
    assert weights.stat().st_mtime_ns == weights_before


def test_same_seed_same_weights(tmp_path, built_dir):
    other = build_tiny_pipeline(tmp_path / "again")
    for rel in (
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    ):
        assert (other / rel).read_bytes() == (built_dir / rel).read_bytes(), rel


def test_stale_or_partial_dir_is_rebuilt(tmp_path):
    out = tmp_path / "pipe"
    out.mkdir()
    (out / "model_index.json").write_text("{}", encoding="utf-8")  # no marker
    build_tiny_pipeline(out)
    assert is_complete(out)
    assert (out / "unet").is_dir()

    marker = out / MARKER_FILENAME
    marker.write_text(json.dumps({"version": -1, "seed": 0}), encoding="utf-8")
    assert not is_complete(out)
    build_tiny_pipeline(out)
    assert json.loads(marker.read_text(encoding="utf-8"))["version"] == TINY_PIPELINE_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_loads_via_autopipeline(pipe):
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.vae_scale_factor == 8
    assert pipe.tokenizer.model_max_length == 77
    assert pipe.safety_checker is None


def test_tokenizer_handles_english_and_chinese(pipe):
    tok = pipe.tokenizer
    for text in ("a red fox in the forest", "一只红色的狐狸"):
        ids = tok(text, padding="max_length", max_length=77, truncation=True).input_ids
        assert len(ids) == 77
        assert ids[0] == tok.bos_token_id
        assert all(0 <= i < pipe.text_encoder.config.vocab_size for i in ids)
        assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == text.replace(" ", "")


def test_output_size_and_type(pipe):
    from PIL import Image

    img = _generate(pipe, 42, size=64, steps=1)
    assert isinstance(img, Image.Image)
    assert img.size == (64, 64)
    img = _generate(pipe, 42, size=48, steps=1)  # any multiple of 8
    assert img.size == (48, 48)


def test_deterministic_for_same_seed(pipe):
    a = np.asarray(_generate(pipe, 42))
    b = np.asarray(_generate(pipe, 42))
    assert np.array_equal(a, b)
    assert a.std() > 0  # not a flat image


def test_different_seed_differs(pipe):
    a = np.asarray(_generate(pipe, 42))
    c = np.asarray(_generate(pipe, 43))
    assert not np.array_equal(a, c)


def test_step_callback_called_per_step(pipe):
    seen: list[int] = []

    def cb(_pipe, step, _timestep, kwargs):
        seen.append(step)
        return kwargs

    _generate(pipe, 0, steps=2, callback_on_step_end=cb)
    assert seen == [0, 1]
