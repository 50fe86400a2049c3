"""Insights tab (admin): like-rates with 95 % intervals, trend, recent 👎, knowledge gaps, exports.

Closed unless ``AIGC_ADMIN_TOKEN`` is set, and then only for whoever types the token:
nothing is computed or sent to the browser before the token checks out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.feedback.arena import by_kind
from aigc_demo.feedback.export import FORMATS, export
from aigc_demo.feedback.insights import filter_records, report
from aigc_demo.feedback.report import session_report, to_html
from aigc_demo.tabs import tab_names
from aigc_demo.ui.common import OnLoad, is_admin, scroll_to, user_errors
from aigc_demo.ui.i18n import T, has, lang_of, table, tr
from aigc_demo.ui.tables import GAP_COLUMNS, TICKET_COLUMNS, gap_rows, ticket_rows

RATE_COLUMNS = ["group", "up", "down", "n", "like_rate", "ci_low", "ci_high"]
DOWNVOTE_COLUMNS = ["when", "tab", "prompt", "output", "comment", "reasons", "sources"]
ARENA_COLUMNS = ["kind", "contestant", "rating", "ci_low", "ci_high", "battles", "wins", "ties", "win_rate"]


def build(services: Services, examples: list[str]) -> OnLoad | None:
    """Build the tab; returns a page-load hook (fn, outputs) that puts the empty tables'
    headers in the visitor's language (gr.Dataframe headers do not take gr.I18n)."""
    if not services.settings.admin_token:
        gr.Markdown(T("admin_disabled"))
        return None
    ui = _render()
    _wire(services, ui)
    tables = [
        ("by_tab", RATE_COLUMNS),
        ("by_model", RATE_COLUMNS),
        ("by_variant", RATE_COLUMNS),
        ("downvotes", DOWNVOTE_COLUMNS),
        ("gaps", GAP_COLUMNS),
        ("handoffs", TICKET_COLUMNS),
        ("arena", ARENA_COLUMNS),
    ]

    def headers(request: gr.Request) -> tuple[Any, ...]:
        lang = lang_of(request)
        return (*(table([], columns, lang) for _, columns in tables), trend_plot(lang))

    return headers, [*(ui[name] for name, _ in tables), ui["trend"]]


def arena_rows(votes: list[dict[str, Any]], lang: str = "en") -> list[list[Any]]:
    """The Bradley–Terry leaderboards, one per kind, as table rows (ARENA_COLUMNS order)."""
    return [
        [
            tr(f"arena_kind_{kind}", lang),
            s.model,
            s.rating,
            s.ci_low,
            s.ci_high,
            s.battles,
            s.wins,
            s.ties,
            "–" if s.win_rate is None else f"{s.win_rate:.0%}",
        ]
        for kind, table in by_kind(votes).items()
        for s in table
    ]


def downvoted_images(downvotes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The gallery of 👎 images: (file, caption) for those still on disk, newest first."""
    return [
        (row["image"], row["comment"] or row["reasons"] or row["prompt"][:60])
        for row in downvotes
        if row.get("image", "").endswith(".png") and Path(row["image"]).is_file()
    ][:24]


def trend_plot(lang: str, value: Any = None) -> Any:
    """The trend plot's data with its axis titles in ``lang``."""
    x_title, y_title = tr("axis_day", lang), tr("axis_like_rate", lang)
    if value is None:
        return gr.update(x_title=x_title, y_title=y_title)
    return gr.update(value=value, x_title=x_title, y_title=y_title)


def _render() -> dict[str, Any]:
    ui: dict[str, Any] = {}
    with gr.Row(equal_height=True):
        ui["token"] = gr.Textbox(label=T("admin_token"), type="password", scale=2, elem_id="insights-token")
        ui["tab"] = gr.Dropdown(
            [(T(f"filter_{t}"), t) for t in ("all", *tab_names(rated=True))],
            value="all",
            label=T("tab_filter"),
            scale=1,
        )
        ui["since"] = gr.Textbox(label=T("from_date"), placeholder="2026-11-01", scale=1)
        ui["until"] = gr.Textbox(label=T("to_date"), placeholder="2026-11-30", scale=1, elem_id="insights-until")
        ui["session"] = gr.Textbox(label=T("session_filter"), scale=1)
        ui["variant"] = gr.Textbox(label=T("variant"), scale=1)
        ui["refresh"] = gr.Button(T("refresh"), variant="primary", scale=1, elem_id="insights-refresh")
    ui["totals"] = gr.Markdown(elem_id="insights-totals")
    with gr.Row():
        ui["by_tab"] = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_tab"), interactive=False)
        ui["by_model"] = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_model"), interactive=False)
    ui["by_variant"] = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_variant"), interactive=False)
    # Bars, not a line: a single day of data is one bar (a line needs two days to show at all).
    ui["trend"] = gr.BarPlot(
        x="day",
        y="like_rate",
        title=T("trend"),
        y_lim=[0, 1],
        y_axis_format=".0%",
        height=260,
        elem_id="insights-trend",
    )
    ui["downvotes"] = gr.Dataframe(headers=DOWNVOTE_COLUMNS, label=T("recent_down"), interactive=False, wrap=True)
    ui["bad_images"] = gr.Gallery(
        label=T("recent_down_images"),
        columns=8,
        height=140,
        object_fit="contain",
        preview=False,
        elem_id="insights-bad-images",
    )
    ui["gaps"] = gr.Dataframe(headers=GAP_COLUMNS, label=T("gaps"), interactive=False, wrap=True)
    ui["arena"] = gr.Dataframe(
        headers=ARENA_COLUMNS, label=T("arena_leaderboard"), interactive=False, elem_id="insights-arena"
    )
    ui["handoffs"] = gr.Dataframe(
        headers=TICKET_COLUMNS, label=T("handoffs_insights"), interactive=False, wrap=True, elem_id="insights-handoffs"
    )
    with gr.Row(equal_height=False):  # buttons keep their own height next to the file box
        ui["format"] = gr.Dropdown(
            [(T(f"format_{f}"), f) for f in FORMATS], value="sft", label=T("export_format"), scale=1
        )
        ui["export"] = gr.Button(T("export"), scale=1, elem_id="insights-export")
        ui["report"] = gr.Button(T("session_report"), scale=1, elem_id="insights-report")
        ui["file"] = gr.File(label=T("download"), scale=2, file_count="multiple", elem_id="insights-file")
    return ui


def _wire(services: Services, ui: dict[str, Any]) -> None:
    settings, feedback = services.settings, services.feedback

    def filters(tab, since, until, session, variant) -> dict[str, Any]:
        return {
            "tab": None if tab in (None, "", "all") else tab,
            "since": (since or "").strip() or None,
            "until": (until or "").strip() or None,
            "session": (session or "").strip() or None,
            "variant": (variant or "").strip() or None,
        }

    def guard(token: str) -> None:
        if not is_admin(settings, token):
            raise AigcError("wrong_token")

    def show(token, tab, since, until, session, variant, request: gr.Request):
        guard(token)
        lang = lang_of(request)
        ratings, events = feedback.read("ratings"), feedback.read("events")
        data = report(ratings.records, events.records, **filters(tab, since, until, session, variant))
        t = data["totals"]
        ci = tr("insights_ci", lang)

        def tab_name(key: str) -> str:  # "support" → "客服" in zh; other values as stored
            return tr(f"filter_{key}", lang) if has(f"filter_{key}") else key

        rate = "–" if t["like_rate"] is None else f"{t['like_rate']:.0%} ({ci} {t['ci'][0]:.0%}–{t['ci'][1]:.0%})"
        cov = (
            " · ".join(
                tr("coverage_item", lang, tab=tab_name(tab_), rated=c["rated"], gen=c["generated"])
                for tab_, c in data["coverage"].items()
            )
            or "–"
        )
        totals = (
            tr(
                "insights_totals",
                lang,
                gen=t["generations"],
                rated=t["ratings"],
                up=t["up"],
                down=t["down"],
                rate=rate,
                sessions=t["sessions"],
            )
            + "\n\n"
            + tr("coverage", lang, cov=cov)
        )
        failures = services.feedback.failures
        if failures:  # e.g. handoffs not stored on a full disk: customers were told to call instead
            items = "; ".join(f"{name} ×{f['count']} ({f['error'][:120]})" for name, f in failures.items())
            totals = tr("storage_failures", lang, items=items) + "\n\n" + totals
        if ratings.damaged + events.damaged:
            totals = tr("skipped_records", lang, n=ratings.damaged + events.damaged) + "\n\n" + totals
        if data["variant_comparison"]:
            totals += "\n\n**A/B:** " + "; ".join(data["variant_comparison"])
        gaps = gap_rows(services.support.knowledge_gaps(), lang)
        f = filters(tab, since, until, session, variant)
        tickets = [
            t
            for t in services.support.handoffs.tickets()
            if (not f["since"] or t.ts[:10] >= f["since"])
            and (not f["until"] or t.ts[:10] <= f["until"])
            and (not f["session"] or t.session_id == f["session"])
        ][:50]
        trend = pd.DataFrame(data["daily"] or [], columns=["day", "like_rate", "ci_low", "ci_high", "n"])

        def as_table(rows: list[dict], cols: list[str], *, tabs_in: str = "") -> Any:
            def cell(col: str, value: Any) -> Any:  # rates as percentages, not 0.1176
                if col in ("like_rate", "ci_low", "ci_high"):
                    return "–" if value is None else f"{value:.0%}"
                return tab_name(value) if col == tabs_in else value

            return table([[cell(c, r[c]) for c in cols] for r in rows], cols, lang)

        images = downvoted_images(data["downvotes"])
        return (
            totals,
            as_table(data["by_tab"], RATE_COLUMNS, tabs_in="group"),
            as_table(data["by_model"], RATE_COLUMNS),
            as_table(data["by_variant"], RATE_COLUMNS),
            trend_plot(lang, trend),
            as_table(data["downvotes"], DOWNVOTE_COLUMNS, tabs_in="tab"),
            images,
            table(gaps, GAP_COLUMNS, lang),
            table(ticket_rows(tickets, lang), TICKET_COLUMNS, lang),
            table(arena_rows(filter_records(services.arena.votes(), **f), lang), ARENA_COLUMNS, lang),
        )

    def do_export(token, fmt, tab, since, until, session, variant, request: gr.Request):
        guard(token)
        f = filters(tab, since, until, session, variant)
        suffix = {"sft": "jsonl", "dpo": "jsonl", "kto": "jsonl"}.get(fmt, fmt)
        out = Path(tempfile.mkdtemp(prefix="export-")) / f"aigc-{fmt}.{suffix}"
        n = export(
            feedback.read("ratings").records, fmt, out, votes=services.arena.votes(), **f
        )  # every filter on screen
        gr.Info(tr("rows_exported", lang_of(request), n=n))
        return [str(out)]

    def do_report(token, session, request: gr.Request):
        guard(token)
        code = (session or "").strip()
        if not code:
            raise AigcError("need_session")
        lang = lang_of(request)
        text = session_report(
            code,
            feedback.read("ratings").records,
            feedback.read("events").records,
            feedback.read("handoffs").records,
            services.arena.votes(),
            lang=lang,
            reason_label=lambda key: tr(f"handoff_reason_{key}", lang) if has(f"handoff_reason_{key}") else key,
        )
        folder = Path(tempfile.mkdtemp(prefix="report-"))
        safe = "".join(c for c in code if c.isalnum() or c in "-_")[:40] or "session"
        md, page = folder / f"session-{safe}.md", folder / f"session-{safe}.html"
        md.write_text(text, encoding="utf-8")
        page.write_text(to_html(text, f"Session {code}"), encoding="utf-8")
        return [str(md), str(page)]

    filter_inputs = [ui[k] for k in ("tab", "since", "until", "session", "variant")]
    # On a phone the download box is a screen below the buttons: bring it into view.
    ui["report"].click(
        user_errors(do_report, outputs=1),
        [ui["token"], ui["session"]],
        [ui["file"]],
        api_visibility="private",
        js=scroll_to("#insights-file", inputs=2),
    )
    outputs = [
        ui[k]
        for k in (
            "totals",
            "by_tab",
            "by_model",
            "by_variant",
            "trend",
            "downvotes",
            "bad_images",
            "gaps",
            "handoffs",
            "arena",
        )
    ]
    # Enter in the token box shows the data too, as a login form would.
    gr.on(
        [ui["refresh"].click, ui["token"].submit],
        user_errors(show, outputs=len(outputs)),
        [ui["token"], *filter_inputs],
        outputs,
        api_visibility="private",
    )
    ui["export"].click(
        user_errors(do_export, outputs=1),
        [ui["token"], ui["format"], *filter_inputs],
        [ui["file"]],
        api_visibility="private",
        js=scroll_to("#insights-file", inputs=2 + len(filter_inputs)),
    )
