"""Trained models on disk: ``DATA_DIR/models/<name>/``, served as model id ``trained:<name>``.

A folder counts once it holds ``card.json`` (``services/training.py`` writes it last and
renames the folder into place). ``target`` says how to serve one: its ``model.gguf`` on
llama.cpp when there is one and llama.cpp runs here, else the base model with the adapter on
transformers (``TransformersTextBackend`` merges it at load).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINED_PREFIX = "trained:"
CARD = "card.json"


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def is_trained(model_id: str) -> bool:
    return model_id.startswith(TRAINED_PREFIX)


def trained_ids(data_dir: Path) -> list[str]:
    """Every complete trained model, newest first, as ``trained:<name>``."""
    folder = models_dir(data_dir)
    if not folder.is_dir():
        return []
    done = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / CARD).is_file()]
    done.sort(key=lambda p: (p / CARD).stat().st_mtime, reverse=True)
    return [TRAINED_PREFIX + p.name for p in done]


def card(data_dir: Path, model_id: str) -> dict[str, Any] | None:
    path = models_dir(data_dir) / model_id.removeprefix(TRAINED_PREFIX) / CARD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def folder(data_dir: Path, model_id: str) -> Path:
    return models_dir(data_dir) / model_id.removeprefix(TRAINED_PREFIX)
