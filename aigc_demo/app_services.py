"""The composition root: every service built once from ``Settings``, with no UI in sight.

``build_services`` is what the web app, the CLI, the benchmarks and the tests call; the UI
(``ui/demo.py``) receives the result and never builds a service itself, so a service test
or a benchmark imports no Gradio. ``Services.health`` is the report behind ``/health`` and
``GET /healthz``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aigc_demo import __version__
from aigc_demo.config import Settings
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.services.arena import ArenaService
from aigc_demo.services.image import ImageService
from aigc_demo.services.support.bot import SupportService
from aigc_demo.services.text import TextService
from aigc_demo.services.training import TrainingService


@dataclass
class Services:
    settings: Settings
    registry: ModelRegistry
    feedback: FeedbackService
    text: TextService
    image: ImageService
    support: SupportService
    arena: ArenaService
    training: TrainingService

    def health(self) -> dict[str, Any]:
        """Which models are loaded, the profile, the data dir and the app version (public: no paths)."""
        failures = {name: dict(f) for name, f in self.feedback.failures.items()}
        problems = self.registry.problems()
        return without_paths(
            {
                # "degraded": a stream (ratings, handoffs, events) is failing to store — until
                # its next append succeeds; the counts stay listed after that — or a default
                # model cannot serve (its packages are missing, its load failed).
                "status": "degraded" if any(f.get("failing") for f in failures.values()) or problems else "ok",
                "model_problems": problems,
                "version": __version__,
                "profile": self.settings.effective_profile,
                "models": self.registry.status(),
                "loaded": self.registry.loaded(),
                "support_index_ready": self.support.is_ready,
                "storage_failures": failures,
            }
        )


def build_services(settings: Settings, *, registry: ModelRegistry | None = None) -> Services:
    registry = registry or ModelRegistry(settings)
    feedback = FeedbackService.from_settings(settings)
    text, image = TextService(registry, feedback, settings), ImageService(registry, feedback, settings)
    return Services(
        settings=settings,
        registry=registry,
        feedback=feedback,
        text=text,
        image=image,
        support=SupportService(registry, feedback, settings),
        arena=ArenaService(text, image, feedback, settings),
        training=TrainingService(settings, feedback),
    )


_PATH = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:]+){2,}[\\/]?")


def without_paths(value: Any) -> Any:
    """The health answer is public: filesystem paths (a local model directory, the data
    folder in an error message) become "<path>"; ids such as ``packaged:tiny-sd`` stay."""
    if isinstance(value, str):
        return _PATH.sub("<path>", value)
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    return value
