"""bench/gpu.py runs end to end (tiny configs, CPU), so a session with a GPU can use it at once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_gpu_bench_smoke_on_cpu(tmp_path, monkeypatch):
    from bench import gpu

    recorded = []
    monkeypatch.setattr(gpu, "record", lambda *a, **k: recorded.append(a))
    out = gpu.main(["--tiny", "--device", "cpu", "--no-compile", "--runs", "1", "--side", "64", "--tokens", "4"])
    image, llm = out["image"], out["llm"]
    assert {"plain diffusers pipeline", "+ channels_last (UNet, VAE)", "+ fused QKV projections"} <= set(image)
    assert all(v > 0 for v in image.values())
    assert image["batch8_speedup"] > 0 and llm["dynamic cache (baseline)"] > 0
    assert recorded == []  # --tiny numbers never go into bench/RESULTS.md
