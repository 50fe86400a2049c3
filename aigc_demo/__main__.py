"""Command line: ``python -m aigc_demo [serve | prepare | feedback stats]``.

``prepare`` converts / builds the embedded offline models into the cache once (what
``make setup`` runs), so the first request of ``make run`` does not wait for it.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import time

from aigc_demo.config import Settings, load_settings
from aigc_demo.errors import AigcError


def configure_logging() -> None:
    logging.basicConfig(level=os.environ.get("AIGC_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # torchvision is not installed on purpose (its PyPI build does not match the pinned CPU
    # torch); transformers warns about image processors that this app never uses.
    logging.getLogger("transformers.utils.import_utils").addFilter(
        lambda record: "requires torchvision" not in record.getMessage()
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except AigcError as exc:
        print(exc.message, file=sys.stderr)
        raise SystemExit(2) from None


def _prepare(settings: Settings) -> int:
    from aigc_demo.models import packaged

    failures = 0
    for kind in ("text", "image", "embed"):
        model_id = settings.model_for(kind)  # type: ignore[arg-type]
        if not packaged.is_packaged(model_id):
            print(f"{kind:5s} {model_id}: not packaged, loaded from the Hub or disk at first use")
            continue
        start = time.perf_counter()
        try:
            path = packaged.resolve(model_id, settings.cache_dir)
        except AigcError as exc:
            failures += 1
            print(f"{kind:5s} {model_id}: FAILED — {exc.message}", file=sys.stderr)
            continue
        print(f"{kind:5s} {model_id}: ready in {time.perf_counter() - start:.1f}s at {path}")
    return 1 if failures else 0


def _feedback_stats(settings: Settings) -> int:
    from aigc_demo.feedback.service import FeedbackService

    result = FeedbackService(settings.data_dir).ratings.read()
    counts = collections.Counter((r.get("tab"), r.get("rating")) for r in result.records)
    print(f"{len(result.records)} ratings in {settings.data_dir}")
    for (tab, rating), n in sorted(counts.items(), key=str):
        print(f"  {tab:8s} {rating:5s} {n}")
    if result.torn_tail:
        print("  torn last line skipped (a crash mid-write)")
    if result.corrupt_lines:
        print(f"  corrupt lines: {result.corrupt_lines}")
    return 1 if result.corrupt_lines else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the app (default)")
    sub.add_parser("prepare", help="convert / build the embedded offline models once")
    fb = sub.add_parser("feedback", help="inspect the ratings file")
    fb.add_argument("action", choices=["stats"])
    args = parser.parse_args(argv)
    configure_logging()
    settings = settings_or_exit()
    if args.command == "prepare":
        return _prepare(settings)
    if args.command == "feedback":
        return _feedback_stats(settings)
    from aigc_demo.ui.demo import create_demo, launch_options

    create_demo(settings).launch(**launch_options(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
