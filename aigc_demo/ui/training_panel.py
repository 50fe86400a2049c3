"""The Insights tab's training panel (admin): train a model on the data the filters select.

Method, base model, a name and a time limit; then a progress line (steps, time used, time
left, loss) polled once a second by a ``gr.Timer``, and Cancel, which stops after the current
step and keeps the adapter trained so far. The run itself is ``TrainingService.start`` (a
background thread, the compute thread's cores); when it ends the model is served as
``trained:<name>`` — in the Text tab's list on the next page load, and in the Arena against
its base at once.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.models.trained import is_trained
from aigc_demo.ui.common import is_admin, user_errors
from aigc_demo.ui.i18n import T, lang_of, model_label, tr
from aigc_demo.ui.tabs.base import QUICK, Updates

BAR = 20


def progress_line(job: Any, lang: str) -> str:
    """One line for a run: a bar, the steps, time used and left, the loss; or how it ended."""
    if job.state == "done":
        card = job.card or {}
        accuracy = (card.get("held_out_results") or {}).get("eval_rewards/accuracies")
        held = "" if accuracy is None else tr("train_held_out", lang, accuracy=accuracy)
        return tr("train_done", lang, model=card.get("model_id", ""), seconds=card.get("seconds", 0), held=held)
    if job.state == "cancelled":
        return tr("train_cancelled", lang, steps=job.step, model=f"trained:{job.name}")
    if job.state == "failed":
        return "❌ " + (job.error.localized(lang) if job.error is not None else job.message)
    if not job.total:
        return "⏳ " + tr("train_preparing", lang)
    filled = round(BAR * job.step / job.total)
    eta = "–" if job.eta_s is None else f"{job.eta_s:.0f}"
    loss = "–" if job.loss is None else f"{job.loss:.3f}"
    return tr(
        "train_progress",
        lang,
        bar="▓" * filled + "░" * (BAR - filled),
        step=job.step,
        total=job.total,
        elapsed=f"{job.elapsed_s:.0f}",
        eta=eta,
        loss=loss,
    )


class TrainingPanel:
    """Rendered inside the Insights tab, under its filters (which it reads)."""

    def __init__(self, services: Services, token: Any, filters: list[Any]) -> None:
        self.services = services
        self.token = token
        self.filters = filters
        registry = services.registry
        bases = [m for m in registry.text_choices() if not is_trained(m)]
        with gr.Accordion(T("train_title"), open=False, elem_id="insights-train"):
            gr.Markdown(T("train_intro"))
            with gr.Row(equal_height=True):
                self.method = gr.Dropdown(
                    [(T(f"train_method_{m}"), m) for m in ("dpo", "kto", "sft")], value="dpo", label=T("train_method")
                )
                self.base = gr.Dropdown(
                    [(model_label(m), m) for m in bases], value=bases[0] if bases else None, label=T("train_base")
                )
                self.name = gr.Textbox(label=T("train_name"), placeholder="polite-v1", elem_id="insights-train-name")
                self.minutes = gr.Number(value=10, precision=0, minimum=1, label=T("train_minutes"))
            with gr.Row():
                self.start_btn = gr.Button(T("train_start"), variant="primary", elem_id="insights-train-start")
                self.cancel_btn = gr.Button(
                    T("train_cancel"), variant="stop", visible=False, elem_id="insights-train-cancel"
                )
            self.status = gr.Markdown(elem_id="insights-train-status")
        self.job = gr.State(None)
        self.timer = gr.Timer(1.0, active=False)
        self._setup_events()

    def _setup_events(self) -> None:
        outputs = [self.job, self.timer, self.start_btn, self.cancel_btn, self.status]
        self.start_btn.click(
            user_errors(self.start, outputs=len(outputs)),
            [self.token, self.method, self.base, self.name, self.minutes, *self.filters],
            outputs,
            api_visibility="private",
            concurrency_limit=None,
        )
        self.timer.tick(self.poll, [self.job], outputs, **QUICK)
        self.cancel_btn.click(user_errors(self.cancel, outputs=1), [self.token, self.job], [self.status], **QUICK)

    def _running(self, running: bool) -> Updates:
        return {
            self.timer: gr.Timer(active=running),
            self.start_btn: gr.update(visible=not running),
            self.cancel_btn: gr.update(visible=running),
        }

    def start(self, token, method, base, name, minutes, tab, since, until, session, variant, request: gr.Request):
        if not is_admin(self.services.settings, token):
            raise AigcError("wrong_token")
        filters = {"tab": None if tab in (None, "", "all") else tab, "since": since, "until": until}
        filters |= {"session": session, "variant": variant}
        filters = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in filters.items()}
        job = self.services.training.start(
            method, base or "", (name or "").strip(), max_minutes=float(minutes) if minutes else None, filters=filters
        )
        return {self.job: job.name, self.status: progress_line(job, lang_of(request)), **self._running(True)}

    def poll(self, name: str | None, request: gr.Request) -> Updates:
        job = self.services.training.jobs.get(name or "")
        if job is None:
            return {**self._running(False)}
        return {self.status: progress_line(job, lang_of(request)), **self._running(job.state == "running")}

    def cancel(self, token, name: str | None, request: gr.Request) -> Any:
        if not is_admin(self.services.settings, token):
            raise AigcError("wrong_token")
        job = self.services.training.jobs.get(name or "")
        if job is not None and job.state == "running":
            job.cancel.set()
        return tr("train_cancelling", lang_of(request))
