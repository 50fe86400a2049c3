from __future__ import annotations

from pathlib import Path

import pytest

from aigc_demo.config import PROFILE_DEFAULTS, Settings, load_settings
from aigc_demo.errors import SettingsError


def test_defaults_come_from_the_offline_profile(settings):
    assert settings.effective_profile == "offline"
    assert settings.model_for("text") == PROFILE_DEFAULTS["offline"]["text_model"]
    assert settings.model_for("image") == "packaged:tiny-sd"
    assert settings.max_prompt_chars == 4000
    assert settings.cache_dir is not None


def test_explicit_model_wins_over_profile(monkeypatch):
    monkeypatch.setenv("AIGC_TEXT_MODEL", "  some/local-dir  ")
    assert Settings().model_for("text") == "some/local-dir"


def test_gpu_profile_uses_hub_ids(monkeypatch):
    monkeypatch.setenv("AIGC_PROFILE", "gpu")
    s = Settings()
    assert s.model_for("text") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert s.model_for("image") == "stabilityai/sd-turbo"
    assert s.resolved_support_answer_mode == "llm"


def test_auto_profile_is_offline_without_cuda(monkeypatch):
    import torch

    from aigc_demo import config

    monkeypatch.setenv("AIGC_PROFILE", "auto")
    monkeypatch.setattr(config, "accelerator_possible", lambda: True)  # a GPU driver is there: torch decides
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Settings().effective_profile == "offline"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Settings().effective_profile == "gpu"
    monkeypatch.setattr(config, "accelerator_possible", lambda: False)  # no driver: no need to ask torch
    assert Settings().effective_profile == "offline"


def test_port_honours_gradio_server_port(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert Settings().port == 7999
    monkeypatch.setenv("AIGC_PORT", "8001")
    assert Settings().port == 8001


def test_data_dir_defaults_to_dot_data_without_spaces_disk(monkeypatch):
    monkeypatch.delenv("AIGC_DATA_DIR")
    monkeypatch.delenv("AIGC_CACHE_DIR")
    s = Settings()
    expected = Path("/data") if Path("/data").is_dir() else Path("data")
    assert s.data_dir == expected
    assert s.cache_dir == expected / "cache"


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("AIGC_PROFILE", "cloud", "'offline', 'gpu' or 'auto'"),
        ("AIGC_MAX_PROMPT_CHARS", "0", "greater than or equal to 1"),
        ("AIGC_IMAGE_MAX_SIDE", "1001", "multiple of 8"),
        ("AIGC_PORT", "70000", "less than or equal to 65535"),
        ("AIGC_SUPPORT_MIN_CONFIDENCE", "abc", "valid number"),
    ],
)
def test_bad_settings_name_the_variable_and_the_rule(monkeypatch, env, value, needle):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert env in info.value.message
    assert needle in info.value.message
    assert repr(value) in info.value.message
