"""The GPU edge without a GPU: CUDA out-of-memory becomes advice; the ZeroGPU shim on and off Spaces."""

from __future__ import annotations

import pytest

from aigc_demo.errors import AigcError


def test_cuda_out_of_memory_becomes_advice_and_the_next_request_works(services, monkeypatch):
    import torch

    backend = services.registry.get("image")
    real = backend.generate
    calls = []

    def oom_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    released = []
    monkeypatch.setattr(backend, "generate", oom_once)
    monkeypatch.setattr("aigc_demo.services.image.release_gpu_memory", lambda: released.append(1))
    with pytest.raises(AigcError) as info:
        services.image.generate("x", width=1024, height=1024, num_images=4)
    assert info.value.message.startswith("Out of GPU memory at 1024×1024 × 4. Try 768×768 or fewer images")
    assert released == [1]
    assert services.image.generate("x", width=64, height=64)["images"]


def test_zero_gpu_shim_is_a_no_op_off_spaces(monkeypatch):
    from aigc_demo.models.device import zero_gpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def fn(x):
        return x * 2

    assert zero_gpu(duration=5)(fn) is fn


def test_zero_gpu_shim_wraps_with_spaces_gpu_on_zero_gpu(monkeypatch):
    import sys
    import types

    from aigc_demo.models import device

    seen = {}
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: lambda f: (seen.setdefault("duration", duration), f)[1]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: object())

    def estimate(*args):
        return 30

    wrapped = device.zero_gpu(duration=estimate)(lambda: "ran")
    assert wrapped() == "ran" and seen["duration"] is estimate
