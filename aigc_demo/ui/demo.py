"""``create_demo(settings)``: the Blocks app — header, the tabs of ``aigc_demo/tabs.py``, the public API.

Models are not loaded here (they load lazily on first use), so building the app is
fast and a broken model only breaks its own tab. ``launch_options`` holds what Gradio 6
takes at launch (theme, css, allowed paths) so ``app.py`` stays a few lines.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aigc_demo import __version__
from aigc_demo.app_services import Services, build_services
from aigc_demo.config import ASSETS_DIR, Settings
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.tabs import TABS
from aigc_demo.ui import admission
from aigc_demo.ui.api import PublicApi
from aigc_demo.ui.common import OnLoad, session_of
from aigc_demo.ui.i18n import I18N, T, lang_of, tr

log = logging.getLogger(__name__)


def _examples() -> dict[str, list[str]]:
    try:
        return json.loads((ASSETS_DIR / "examples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("no examples: %s", exc)
        return {}


def create_demo(
    settings: Settings, *, services: Services | None = None, registry: ModelRegistry | None = None
) -> gr.Blocks:
    """The page over ``services`` (built here from ``settings`` and ``registry`` when not given)."""
    services = services or build_services(settings, registry=registry)
    if settings.preload:  # overlaps the model loads with building and serving the page
        services.registry.preload("text")
    examples = _examples()
    profile = settings.effective_profile
    # Uploads and the copies Gradio caches for display are deleted once they are a day old
    # (the images themselves live in the data dir and stay).
    clean_up = (3600, int(settings.upload_max_age_h * 3600))
    with gr.Blocks(title="AIGC Demo Studio", delete_cache=clean_up) as demo:
        with gr.Row(elem_classes=["app-header"]):
            gr.Markdown("# AIGC Demo Studio", elem_classes=["app-title"])
            # Plain links; assets/lang.js keeps the other URL parameters when switching.
            gr.HTML(
                '<nav class="lang-switch" aria-label="Language / 语言"><a href="?lang=en" hreflang="en">English</a>'
                ' · <a href="?lang=zh" hreflang="zh">中文</a></nav>',
                elem_id="lang-switch",
            )
        gr.Markdown(T("app_tagline"), elem_classes=["app-tagline"])
        meta_line = gr.Markdown(elem_classes=["app-meta"])
        # ui/api.py: the whole public API, declared first so its names are taken before any
        # UI handler's (Gradio names a private handler after its function, "rate" → /rate_1).
        PublicApi(services).register()
        on_load: list[OnLoad] = []
        with gr.Tabs():
            for tab in TABS:  # aigc_demo/tabs.py: each built by aigc_demo/ui/tabs/<name>.py
                with gr.Tab(T(f"tab_{tab.name}"), id=tab.name):
                    module = importlib.import_module(f"aigc_demo.ui.tabs.{tab.name}")
                    hook = module.build(services, examples.get(tab.name, []))
                    if hook is not None:
                        on_load.append(hook)
        # The user-testing session code (from ?session=CODE), shown discreetly so a
        # participant can quote it; the facilitator's report uses it.
        session_line = gr.Markdown(elem_classes=["session-line"], elem_id="session-line")

        def show_meta(request: gr.Request) -> tuple[str, str]:
            lang = lang_of(request)
            return (
                tr("meta_line", lang, profile=profile, version=__version__),
                tr("session_line", lang, code=session_of(request)[:40]),
            )

        demo.load(show_meta, None, [meta_line, session_line], api_visibility="private", queue=False)
        for fn, outputs, *inputs in on_load:
            # A tab's browser-kept state (gr.BrowserState, made with render=False) is rendered
            # here, outside the tabs: Gradio mounts a tab's components only when it is first
            # opened, and an unmounted BrowserState has not read localStorage when the page loads.
            for component in inputs[0] if inputs else []:
                if not component.is_rendered:
                    component.render()
            demo.load(fn, inputs[0] if inputs else None, outputs, api_visibility="private", queue=False)

    # No global size: each group is capped on its own, fairly (ui/admission.py), so a flood
    # of generations cannot turn ratings, support answers or health checks away.
    demo.queue(default_concurrency_limit=settings.concurrency_limit, max_size=None)
    admission.install(demo, settings)
    if settings.preload:
        # The support index is pure-Python work that holds the GIL: started at once it cost a
        # warm start 3 s before the page was served. It waits for the page and for any answer
        # being written (bench/first_minute.py).
        services.support.preload(
            lambda: bool(getattr(demo, "is_running", False)) and not services.registry.generating()
        )
    return demo


def _health_route(health: Callable[[], dict]) -> Route:
    """``GET /healthz``: JSON for a monitor, outside Gradio's queue so it answers when
    the queue is full (a queued ``/health`` call is refused then, like any other)."""

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(health(), headers={"Cache-Control": "no-store"})

    return Route("/healthz", endpoint, methods=["GET"])


def launch_options(
    settings: Settings, demo: gr.Blocks | None = None, services: Services | None = None
) -> dict[str, Any]:
    """What ``demo.launch`` takes; with ``demo`` and its ``services``, also ``GET /healthz`` and
    the middleware that keeps errors public-safe and uploads within quota."""
    images = Path(settings.data_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    if settings.proxy_hops == 0:
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default and rewrites the caller's
        # address with it, so behind a local tunnel anyone could name themselves afresh (and get
        # a fresh upload budget). With no proxy of ours in front, the connection's address is the
        # caller's; an explicit FORWARDED_ALLOW_IPS still wins.
        os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
    app_kwargs: dict[str, Any] = {}
    if demo is not None and services is not None:
        max_bytes = int(settings.max_request_mb * 1024 * 1024)
        app_kwargs = {
            "routes": [_health_route(services.health)],
            "middleware": [
                Middleware(admission.NoRemoteContent),
                Middleware(
                    admission.PublicErrors,
                    demo=demo,
                    max_bytes=max_bytes,
                    uploads=admission.UploadQuota(
                        per_client=settings.upload_quota_mb * 1024 * 1024,
                        total=settings.upload_total_mb * 1024 * 1024,
                    ),
                    proxy_hops=settings.proxy_hops,
                ),
            ],
        }
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "theme": gr.themes.Soft(primary_hue="indigo"),
        "css_paths": [ASSETS_DIR / "style.css"],
        "head": "".join(
            "<script>" + (ASSETS_DIR / name).read_text(encoding="utf-8") + "</script>"
            for name in ("session.js", "lang.js", "shortcuts.js")
        ),
        "i18n": I18N,
        # Only the generated-images folder is served, never a user-chosen path.
        "allowed_paths": [str(images.resolve())],
        "show_error": False,
        # "Use via API" opens the endpoint docs the README points API users to.
        "footer_links": ["api", "gradio", "settings"],
        # Uploads (a PNG to read, a knowledge-base file) are small: Gradio takes any size unless told.
        "max_file_size": f"{settings.max_upload_mb}mb",
        "app_kwargs": app_kwargs,
    }
