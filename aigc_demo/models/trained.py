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
    """Every complete trained model with a usable card, newest first, as ``trained:<name>``."""
    root = models_dir(data_dir)
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # no models yet
        return []
    found = []
    for path in folders:
        try:
            mtime = (path / CARD).stat().st_mtime  # a folder removed meanwhile is simply not listed
        except OSError:
            continue
        if card(data_dir, TRAINED_PREFIX + path.name) is not None:
            found.append((mtime, path.name))
    return [TRAINED_PREFIX + name for _, name in sorted(found, reverse=True)]


def card(data_dir: Path, model_id: str) -> dict[str, Any] | None:
    """The model's card, or None when it is missing or not one (a JSON object naming its base)."""
    path = models_dir(data_dir) / model_id.removeprefix(TRAINED_PREFIX) / CARD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("base"), str) and data["base"] else None


def folder(data_dir: Path, model_id: str) -> Path:
    return models_dir(data_dir) / model_id.removeprefix(TRAINED_PREFIX)
