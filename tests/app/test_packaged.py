"""A GGUF shipped in parts: joined once, checked, atomic, and a missing part named."""

from __future__ import annotations

import hashlib
import importlib

import pytest

from aigc_demo.errors import ModelLoadError
from aigc_demo.models import packaged


def _parts(tmp_path, monkeypatch, chunks: list[bytes]) -> packaged.PartedGguf:
    site = tmp_path / "site"
    for i, chunk in enumerate(chunks, 1):
        folder = site / f"fakeparts_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    whole = b"".join(chunks)
    return packaged.PartedGguf(
        name="fake-model",
        filename="fake.gguf",
        pip_prefix="fakeparts-part",
        version="1.0",
        parts=len(chunks),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def test_parts_are_joined_once_in_order_and_verified(tmp_path, monkeypatch):
    spec = _parts(tmp_path, monkeypatch, [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7])
    path = packaged.joined_gguf(spec, tmp_path / "cache")
    assert path.read_bytes() == b"GGUF" + b"a" * 100 + b"b" * 50 + b"c" * 7
    assert not list(path.parent.glob("*.tmp"))
    stamp = path.stat().st_mtime_ns
    assert packaged.joined_gguf(spec, tmp_path / "cache") == path and path.stat().st_mtime_ns == stamp  # not redone


def test_a_missing_part_is_named_in_both_languages(tmp_path, monkeypatch):
    spec = _parts(tmp_path, monkeypatch, [b"x" * 10, b"y" * 10])
    spec = packaged.PartedGguf(**{**spec.__dict__, "parts": 3})
    with pytest.raises(ModelLoadError) as info:
        packaged.joined_gguf(spec, tmp_path / "cache")
    assert "fakeparts-part3" in info.value.message and "fakeparts-part3" in info.value.localized("zh")
    assert "fakeparts-part1" not in info.value.message.split("package(s)")[1].split("not installed")[0]
    assert packaged.missing("packaged:qwen2.5-coder-0.5b-instruct") is None  # make setup installs all six


def test_a_wrong_part_leaves_no_file_a_later_start_would_trust(tmp_path, monkeypatch):
    spec = _parts(tmp_path, monkeypatch, [b"x" * 10, b"y" * 10])
    spec = packaged.PartedGguf(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelLoadError, match="do not make the expected file"):
        packaged.joined_gguf(spec, tmp_path / "cache")
    folder = tmp_path / "cache" / "fake-model-gguf"
    assert not (folder / "fake.gguf").exists() and not list(folder.glob("*.tmp"))
