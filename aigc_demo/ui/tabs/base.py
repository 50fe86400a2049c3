"""What the tab classes share: the update type, the quick-event options, the Stop button.

A tab is a class built as gradio's own ``ChatInterface`` is: components are attributes laid
out by ``_render_*`` methods, events are wired in ``_setup_events`` to named handler methods,
and every handler returns ``{component: value}`` for what it changes (Gradio leaves the other
outputs as they are), so adding an output never shifts a positional tuple.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.ui.common import StopFlags, session_of

Updates = dict[Any, Any]
"""A handler's result: ``{component: new value or gr.update(...)}``; left-out outputs stay."""

QUICK: dict[str, Any] = {"api_visibility": "private", "queue": False}
"""Private and unqueued: the quick UI-only events (a button shown, a form filled)."""


class StoppableTab:
    """A tab whose long job has a Stop button beside its Generate button.

    The subclass renders ``generate_btn`` and ``stop_btn``; the running handler polls
    ``stop_flags`` (Gradio's ``cancels`` would kill it and lose the partial result).
    """

    generate_btn: Any
    stop_btn: Any

    def __init__(self) -> None:
        self.stop_flags = StopFlags()

    @property
    def stop_buttons(self) -> list[Any]:
        return [self.generate_btn, self.stop_btn]

    def show_stop(self) -> Updates:
        return {self.generate_btn: gr.update(visible=False), self.stop_btn: gr.update(visible=True)}

    def hide_stop(self) -> Updates:
        return {self.generate_btn: gr.update(visible=True), self.stop_btn: gr.update(visible=False)}

    def request_stop(self, request: gr.Request) -> Updates:
        self.stop_flags.stop(session_of(request))
        return self.hide_stop()
