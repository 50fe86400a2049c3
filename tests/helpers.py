"""Helpers tests import: the public API list, the app on a port, the CLI in-process."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from aigc_demo.config import Settings
from aigc_demo.ui.api import ENDPOINTS

ROOT = Path(__file__).resolve().parents[1]
"""The repository (tests/ sits at its top)."""

# The API a client may call (ui/api.py); every other handler is UI-only (api_visibility="private").
PUBLIC_ENDPOINTS = {f"/{name}" for name in ENDPOINTS}

# What `make setup` prepared (python -m aigc_demo prepare): the default cache folder.


@contextlib.contextmanager
def serve_app(settings: Settings, registry=None) -> Iterator[str]:
    """The real app on ``settings.port`` for the duration of the block; yields its URL."""
    from aigc_demo.app_services import build_services
    from aigc_demo.ui.demo import create_demo, launch_options

    services = build_services(settings, registry=registry)
    demo = create_demo(settings, services=services)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(settings, demo, services))
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        demo.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m aigc_demo ARGS`` in this process: its exit code, stdout and stderr.

    What the module's ``__main__`` guard does (``raise SystemExit(main())``) without a new
    interpreter (~0.15 s of imports each, more under load). Settings come from the
    environment, as in a subprocess: ``isolated_env`` points them at the test's temp dir.
    test_arena.py and test_export.py still run the real ``python -m aigc_demo``.
    """
    from aigc_demo.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse and settings_or_exit exit like the real CLI
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    return subprocess.CompletedProcess(["python", "-m", "aigc_demo", *args], code, out.getvalue(), err.getvalue())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
