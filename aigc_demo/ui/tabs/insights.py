"""Insights tab (admin): like-rates with 95 % intervals, trend, recent 👎, knowledge gaps, exports.

Closed unless ``AIGC_ADMIN_TOKEN`` is set, and then only for whoever types the token:
nothing is computed or sent to the browser before the token checks out. A tab class
(``ui/tabs/base.py`` says how they are built).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.feedback.arena import by_kind, guidance, separations
from aigc_demo.feedback.export import FORMATS, export
from aigc_demo.feedback.insights import filter_records, report
from aigc_demo.feedback.report import session_report, to_html
from aigc_demo.feedback.support_metrics import handoff_rates, service_times
from aigc_demo.tabs import tab_names
from aigc_demo.ui.common import OnLoad, is_admin, scroll_to, user_errors
from aigc_demo.ui.i18n import T, has, lang_of, table, tr
from aigc_demo.ui.operator_panel import OperatorPanel, duration
from aigc_demo.ui.tables import GAP_COLUMNS, TICKET_COLUMNS, gap_rows, ticket_rows
from aigc_demo.ui.tabs.base import Updates
from aigc_demo.ui.training_panel import TrainingPanel

RATE_COLUMNS = ["group", "up", "down", "n", "like_rate", "ci_low", "ci_high"]
DOWNVOTE_COLUMNS = ["when", "tab", "prompt", "output", "comment", "reasons", "sources"]
HANDOFF_RATE_COLUMNS = ["by", "group", "answers", "handoffs", "rate", "ci_low", "ci_high"]
ARENA_COLUMNS = ["kind", "contestant", "rating", "ci_low", "ci_high", "battles", "wins", "ties", "win_rate"]


def build(services: Services, examples: list[str]) -> OnLoad | None:
    """Build the tab; returns a page-load hook (fn, outputs) that puts the empty tables'
    headers in the visitor's language (gr.Dataframe headers do not take gr.I18n)."""
    if not services.settings.admin_token:
        gr.Markdown(T("admin_disabled"))
        return None
    return InsightsTab(services).on_load()


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


def arena_guidance(votes: list[dict[str, Any]], lang: str) -> str:
    """Stopping guidance for every pair that has met, per kind (text and image never meet)."""
    lines = [
        f"- {guidance(s, lang)}"
        for kind in sorted({str(v.get("kind") or "text") for v in votes})
        for s in separations([v for v in votes if str(v.get("kind") or "text") == kind])
    ]
    return f"**{tr('arena_guidance', lang)}**\n\n" + "\n".join(lines) if lines else ""


def handoff_rate_rows(events: list[dict[str, Any]], lang: str) -> list[list[Any]]:
    """How often the support bot handed a conversation to a person, per model, A/B variant
    and session code (HANDOFF_RATE_COLUMNS order), rates with their 95 % Wilson interval."""
    return [
        [
            tr(f"by_{by}_word", lang),
            row["by"],
            row["answers"],
            row["handoffs"],
            f"{row['rate']:.0%}",
            f"{row['ci_low']:.0%}",
            f"{row['ci_high']:.0%}",
        ]
        for by in ("model", "variant", "session")
        for row in handoff_rates(events, by)
    ]


def service_line(streams: dict[str, list[dict[str, Any]]], lang: str, session: str = "") -> str:
    """The people's side of support in one sentence: time to the first operator reply and to
    resolution (median, p90), CSAT with its 95 % interval, tickets still open. ``streams``
    holds the ``handoffs``, ``handoff_messages``, ``handoff_updates`` and ``csat`` records."""
    stats = service_times(
        streams["handoffs"], streams["handoff_messages"], streams["handoff_updates"], streams["csat"], session
    )
    if not stats["tickets"]:
        return ""
    reply, resolved, score = stats["first_reply"], stats["resolution"], stats["csat"]
    parts = [
        _median_part("service_first", reply, lang),
        _median_part("service_resolve", resolved, lang),
        tr(
            "service_csat",
            lang,
            csat=tr("csat_value", lang, mean=score["mean"], lo=score["ci_low"], hi=score["ci_high"], n=score["n"]),
        )
        if score["n"]
        else tr("service_csat_none", lang),
    ]
    return tr("service_times", lang, tickets=stats["tickets"], open=stats["open"], parts=" · ".join(parts))


def _median_part(key: str, times: dict[str, Any], lang: str) -> str:
    """ "first reply in 2 min (median of 5 tickets, 90th percentile 6 min)", or ``key``_none."""
    if not times["n"]:
        return tr(f"{key}_none", lang)
    return tr(key, lang, median=duration(times["median_s"], lang), n=times["n"], p90=duration(times["p90_s"], lang))


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


def _filters(tab, since, until, session, variant) -> dict[str, Any]:
    return {
        "tab": None if tab in (None, "", "all") else tab,
        "since": (since or "").strip() or None,
        "until": (until or "").strip() or None,
        "session": (session or "").strip() or None,
        "variant": (variant or "").strip() or None,
    }


def _tab_name(key: str, lang: str) -> str:
    """ "support" → "客服" in zh; other values as stored."""
    return tr(f"filter_{key}", lang) if has(f"filter_{key}") else key


def _as_table(rows: list[dict], cols: list[str], lang: str, *, tabs_in: str = "") -> Any:
    def cell(col: str, value: Any) -> Any:  # rates as percentages, not 0.1176
        if col in ("like_rate", "ci_low", "ci_high"):
            return "–" if value is None else f"{value:.0%}"
        return _tab_name(value, lang) if col == tabs_in else value

    return table([[cell(c, r[c]) for c in cols] for r in rows], cols, lang)


def _totals(data: dict[str, Any], lang: str) -> str:
    """The line above the tables: counts, the like-rate with its interval, rating coverage."""
    t = data["totals"]
    ci = tr("insights_ci", lang)
    rate = "–" if t["like_rate"] is None else f"{t['like_rate']:.0%} ({ci} {t['ci'][0]:.0%}–{t['ci'][1]:.0%})"
    cov = (
        " · ".join(
            tr("coverage_item", lang, tab=_tab_name(tab, lang), rated=c["rated"], gen=c["generated"])
            for tab, c in data["coverage"].items()
        )
        or "–"
    )
    counts = tr(
        "insights_totals",
        lang,
        gen=t["generations"],
        rated=t["ratings"],
        up=t["up"],
        down=t["down"],
        rate=rate,
        sessions=t["sessions"],
    )
    return counts + "\n\n" + tr("coverage", lang, cov=cov)


class InsightsTab:
    """The Insights tab's components and handlers (build it inside its ``gr.Tab``)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.feedback = services.feedback
        self._render_filters()
        # The operators' live inbox comes first: customers are waiting in it.
        self.inbox = OperatorPanel(services, self.token, [self.refresh_btn.click, self.token.submit])
        self._render_tables()
        self._render_exports()
        self.training = TrainingPanel(
            services, self.token, [self.tab, self.since, self.until, self.session, self.variant]
        )
        self._setup_events()

    # -- layout ----------------------------------------------------------------------------

    def _render_filters(self) -> None:
        with gr.Row(equal_height=True):
            self.token = gr.Textbox(label=T("admin_token"), type="password", scale=2, elem_id="insights-token")
            self.tab = gr.Dropdown(
                [(T(f"filter_{t}"), t) for t in ("all", *tab_names(rated=True))],
                value="all",
                label=T("tab_filter"),
                scale=1,
            )
            self.since = gr.Textbox(label=T("from_date"), placeholder="2026-11-01", scale=1)
            self.until = gr.Textbox(label=T("to_date"), placeholder="2026-11-30", scale=1, elem_id="insights-until")
            self.session = gr.Textbox(label=T("session_filter"), scale=1)
            self.variant = gr.Textbox(label=T("variant"), scale=1)
            self.refresh_btn = gr.Button(T("refresh"), variant="primary", scale=1, elem_id="insights-refresh")
        self.totals = gr.Markdown(elem_id="insights-totals")

    def _render_tables(self) -> None:
        with gr.Row():
            self.by_tab = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_tab"), interactive=False)
            self.by_model = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_model"), interactive=False)
        self.by_variant = gr.Dataframe(headers=RATE_COLUMNS, label=T("by_variant"), interactive=False)
        # Bars, not a line: a single day of data is one bar (a line needs two days to show at all).
        self.trend = gr.BarPlot(
            x="day",
            y="like_rate",
            title=T("trend"),
            y_lim=[0, 1],
            y_axis_format=".0%",
            height=260,
            elem_id="insights-trend",
        )
        self.downvotes = gr.Dataframe(headers=DOWNVOTE_COLUMNS, label=T("recent_down"), interactive=False, wrap=True)
        self.bad_images = gr.Gallery(
            label=T("recent_down_images"),
            columns=8,
            height=140,
            object_fit="contain",
            preview=False,
            elem_id="insights-bad-images",
        )
        self.gaps = gr.Dataframe(headers=GAP_COLUMNS, label=T("gaps"), interactive=False, wrap=True)
        self.arena = gr.Dataframe(
            headers=ARENA_COLUMNS, label=T("arena_leaderboard"), interactive=False, elem_id="insights-arena"
        )
        # "About N more votes to tell A from B": where a session's next votes decide something.
        self.arena_guidance = gr.Markdown(elem_id="insights-arena-guidance")
        # The support flow measured: how often the bot hands over, and how the people then serve.
        self.service = gr.Markdown(elem_id="insights-service")
        self.handoff_rates = gr.Dataframe(
            headers=HANDOFF_RATE_COLUMNS,
            label=T("support_metrics"),
            interactive=False,
            elem_id="insights-handoff-rates",
        )
        self.handoffs = gr.Dataframe(
            headers=TICKET_COLUMNS,
            label=T("handoffs_insights"),
            interactive=False,
            wrap=True,
            elem_id="insights-handoffs",
        )

    def _render_exports(self) -> None:
        with gr.Row(equal_height=False):  # buttons keep their own height next to the file box
            self.format = gr.Dropdown(
                [(T(f"format_{f}"), f) for f in FORMATS], value="sft", label=T("export_format"), scale=1
            )
            self.export_btn = gr.Button(T("export"), scale=1, elem_id="insights-export")
            self.report_btn = gr.Button(T("session_report"), scale=1, elem_id="insights-report")
            self.file = gr.File(label=T("download"), scale=2, file_count="multiple", elem_id="insights-file")

    def _headed_tables(self) -> list[tuple[Any, list[str]]]:
        return [
            (self.by_tab, RATE_COLUMNS),
            (self.by_model, RATE_COLUMNS),
            (self.by_variant, RATE_COLUMNS),
            (self.downvotes, DOWNVOTE_COLUMNS),
            (self.gaps, GAP_COLUMNS),
            (self.handoff_rates, HANDOFF_RATE_COLUMNS),
            (self.handoffs, TICKET_COLUMNS),
            (self.arena, ARENA_COLUMNS),
        ]

    def on_load(self) -> OnLoad:
        def headers(request: gr.Request) -> Updates:
            lang = lang_of(request)
            return {
                **{component: table([], columns, lang) for component, columns in self._headed_tables()},
                self.trend: trend_plot(lang),
            }

        return headers, [*(component for component, _ in self._headed_tables()), self.trend]

    # -- events ----------------------------------------------------------------------------

    def _setup_events(self) -> None:
        filters = [self.tab, self.since, self.until, self.session, self.variant]
        # On a phone the download box is a screen below the buttons: bring it into view.
        self.report_btn.click(
            user_errors(self.session_report, outputs=1),
            [self.token, self.session],
            [self.file],
            api_visibility="private",
            js=scroll_to("#insights-file", inputs=2),
        )
        outputs = [
            self.totals,
            self.bad_images,
            self.trend,
            self.arena_guidance,
            self.service,
            *(component for component, _ in self._headed_tables()),
        ]
        # Enter in the token box shows the data too, as a login form would.
        gr.on(
            [self.refresh_btn.click, self.token.submit],
            user_errors(self.show, outputs=len(outputs)),
            [self.token, *filters],
            outputs,
            api_visibility="private",
        )
        self.export_btn.click(
            user_errors(self.export, outputs=1),
            [self.token, self.format, *filters],
            [self.file],
            api_visibility="private",
            js=scroll_to("#insights-file", inputs=2 + len(filters)),
        )

    def _guard(self, token: str) -> None:
        if not is_admin(self.services.settings, token):
            raise AigcError("wrong_token")

    def show(self, token, tab, since, until, session, variant, request: gr.Request) -> Updates:
        """The report for the filters on screen (after the token checks out)."""
        self._guard(token)
        lang = lang_of(request)
        ratings, events = self.feedback.read("ratings"), self.feedback.read("events")
        f = _filters(tab, since, until, session, variant)
        data = report(ratings.records, events.records, **f)
        totals = _totals(data, lang)
        if failures := self.feedback.failures:  # e.g. handoffs not stored on a full disk: customers were told to call
            items = "; ".join(f"{name} ×{fail['count']} ({fail['error'][:120]})" for name, fail in failures.items())
            totals = tr("storage_failures", lang, items=items) + "\n\n" + totals
        if ratings.damaged + events.damaged:
            totals = tr("skipped_records", lang, n=ratings.damaged + events.damaged) + "\n\n" + totals
        if data["variant_comparison"]:
            totals += "\n\n**A/B:** " + "; ".join(data["variant_comparison"])
        trend = pd.DataFrame(data["daily"] or [], columns=["day", "like_rate", "ci_low", "ci_high", "n"])
        support = self.services.support
        votes = filter_records(self.services.arena.votes(), **f)
        return {
            self.totals: totals,
            self.by_tab: _as_table(data["by_tab"], RATE_COLUMNS, lang, tabs_in="group"),
            self.by_model: _as_table(data["by_model"], RATE_COLUMNS, lang),
            self.by_variant: _as_table(data["by_variant"], RATE_COLUMNS, lang),
            self.trend: trend_plot(lang, trend),
            self.downvotes: _as_table(data["downvotes"], DOWNVOTE_COLUMNS, lang, tabs_in="tab"),
            self.bad_images: downvoted_images(data["downvotes"]),
            self.gaps: table(gap_rows(support.knowledge_gaps(), lang), GAP_COLUMNS, lang),
            self.handoff_rates: table(
                handoff_rate_rows(filter_records(events.records, **f), lang), HANDOFF_RATE_COLUMNS, lang
            ),
            self.service: service_line(self._ticket_streams(f), lang, f["session"] or ""),
            self.handoffs: table(ticket_rows(self._tickets(f), lang), TICKET_COLUMNS, lang),
            self.arena: table(arena_rows(votes, lang), ARENA_COLUMNS, lang),
            self.arena_guidance: arena_guidance(votes, lang),
        }

    def _tickets(self, f: dict[str, Any]) -> list[Any]:
        """The newest 50 handoff tickets within the date and session filters."""
        return [
            t
            for t in self.services.support.handoffs.tickets()
            if (not f["since"] or t.ts[:10] >= f["since"])
            and (not f["until"] or t.ts[:10] <= f["until"])
            and (not f["session"] or t.session_id == f["session"])
        ][:50]

    def _ticket_streams(self, f: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The tickets opened within the date filters, with their messages, updates and scores
        (those records' own dates do not matter: a reply tomorrow still counts for today's ticket)."""
        read = self.feedback.read
        dates = {"since": f["since"], "until": f["until"]}
        return {
            "handoffs": filter_records(read("handoffs").records, **dates),
            **{name: read(name).records for name in ("handoff_messages", "handoff_updates", "csat")},
        }

    def export(self, token, fmt, tab, since, until, session, variant, request: gr.Request) -> list[str]:
        """A training or analysis file of the ratings and votes within every filter on screen."""
        self._guard(token)
        f = _filters(tab, since, until, session, variant)
        suffix = {"sft": "jsonl", "dpo": "jsonl", "kto": "jsonl"}.get(fmt, fmt)
        out = Path(tempfile.mkdtemp(prefix="export-")) / f"aigc-{fmt}.{suffix}"
        read = self.feedback.read
        n = export(
            read("ratings").records,
            fmt,
            out,
            votes=self.services.arena.votes(),
            handoffs=read("handoffs").records,
            handoff_updates=read("handoff_updates").records,
            events=read("events").records,
            **f,
        )
        gr.Info(tr("rows_exported", lang_of(request), n=n))
        return [str(out)]

    def session_report(self, token, session, request: gr.Request) -> list[str]:
        """A user-testing session's report, as Markdown and as a page to share."""
        self._guard(token)
        code = (session or "").strip()
        if not code:
            raise AigcError("need_session")
        lang = lang_of(request)
        feedback = self.feedback
        text = session_report(
            code,
            feedback.read("ratings").records,
            feedback.read("events").records,
            feedback.read("handoffs").records,
            self.services.arena.votes(),
            lang=lang,
            messages=feedback.read("handoff_messages").records,
            updates=feedback.read("handoff_updates").records,
            csat=feedback.read("csat").records,
            reason_label=lambda key: tr(f"handoff_reason_{key}", lang) if has(f"handoff_reason_{key}") else key,
        )
        folder = Path(tempfile.mkdtemp(prefix="report-"))
        safe = "".join(c for c in code if c.isalnum() or c in "-_")[:40] or "session"
        md, page = folder / f"session-{safe}.md", folder / f"session-{safe}.html"
        md.write_text(text, encoding="utf-8")
        page.write_text(to_html(text, f"Session {code}"), encoding="utf-8")
        return [str(md), str(page)]
