"""The public API: every ``gr.api`` endpoint of the app, in one place.

``ENDPOINTS`` is the whole public surface: a client may call these and nothing else (every
tab's own event handler is UI-only, ``api_visibility="private"``), and the tests read this
list. Each endpoint calls the service its tab calls, so the API and the page cannot drift;
errors meet the client through ``user_errors`` (``gr.Error`` in the caller's language).

Adding an endpoint: a method on ``PublicApi`` (its signature and docstring are the API docs
"Use via API" shows), one entry in ``ENDPOINTS`` and its concurrency group in ``_groups``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from aigc_demo.app_services import Services
from aigc_demo.errors import AigcError
from aigc_demo.services.validation import clean_text
from aigc_demo.ui.common import is_admin, session_of, user_errors
from aigc_demo.ui.streaming import PACER

# Support answers are retrieval on one core, off the compute thread, so several may run at
# once instead of queueing behind each other (bench/serve.py measures it). LLM-mode answers
# still queue on the compute thread (models/compute.py).
SUPPORT_CONCURRENCY = 4

ENDPOINTS: tuple[str, ...] = (
    "generate_text",
    "generate_image",
    "support_chat",
    "rate",
    "health",
    "arena_text",
    "arena_image",
    "arena_vote",
    "support_updates",
    "support_csat",
    "handoff_queue",
    "handoff_reply",
    "handoff_resolve",
)


def _file(path: str) -> dict[str, Any]:
    """An image the client downloads (Gradio serves it from the allowed images folder)."""
    from gradio.data_classes import FileData

    return FileData(path=path, orig_name=path.rsplit("/", 1)[-1], mime_type="image/png").model_dump()


class PublicApi:
    """The endpoints, as methods over the app's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _groups(self) -> dict[str, dict[str, Any]]:
        """Each endpoint's queue group: generations share their tab's group and its limit
        (ui/admission.py caps each group fairly); ratings and health never wait behind one."""
        llm = {"concurrency_id": "llm", "concurrency_limit": self.services.settings.text_concurrency}
        image = {"concurrency_id": "image"}
        return {
            "generate_text": llm,
            "generate_image": image,
            "support_chat": {"concurrency_id": "support", "concurrency_limit": SUPPORT_CONCURRENCY},
            "rate": {"concurrency_limit": None},
            "health": {"queue": False},
            "arena_text": llm,
            "arena_image": image,
            "arena_vote": {"concurrency_limit": None},
            # A customer's page asks every second while a ticket is open: no queue to wait in.
            "support_updates": {"queue": False},
            "support_csat": {"concurrency_limit": None},
            "handoff_queue": {"concurrency_limit": None},
            "handoff_reply": {"concurrency_limit": None},
            "handoff_resolve": {"concurrency_limit": None},
        }

    def register(self) -> None:
        """Declare every endpoint on the Blocks being built (call inside ``with gr.Blocks()``)."""
        groups = self._groups()
        for name in ENDPOINTS:
            fn: Callable[..., Any] = getattr(self, name)
            gr.api(user_errors(fn), api_name=name, **groups[name])

    def generate_text(
        self,
        prompt: str,
        preset: str = "free",
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = -1,
        stop: str = "",
        system: str = "",
        mode: str = "chat",
        model: str = "",
        history: list | None = None,
        continue_output_id: str = "",
        request: gr.Request | None = None,
    ) -> Iterator[dict]:
        """Generate text, streamed: partial results {"text", "done": false}, then the final one
        with output_id, text, usage, timings, finish_reason, seed and model ("done": true).
        A client's ``predict`` returns the final result; ``submit`` iterates the partial ones.

        preset: free, marketing, product, summary, translate, email, social, slogan, poem.
        max_new_tokens, temperature, top_p: left out = the preset's (as the page sets them).
        mode: chat (template + chat format) or continue (raw continuation, for base models).
        model: one of the Text tab's models; empty = the default.
        history: the conversation so far, [{"role": "user"|"assistant", "content": ...}] (chat mode).
        continue_output_id: an earlier answer to continue from its last word (e.g. one whose
        finish_reason is "length"); prompt may then be empty.
        """
        shown = False
        with PACER.stream() as due:
            for update in self.services.text.stream(
                prompt,
                preset=preset,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
                stop=stop,
                system=system,
                mode=mode,
                model=model or None,
                history=history,
                continue_output_id=continue_output_id or None,
                session_id=session_of(request),
            ):
                if update.done:
                    yield {**(update.result or {}), "done": True}
                elif update.text and due(first=not shown):  # the first text goes out at once
                    shown = True
                    yield {"text": update.text, "done": False}

    def generate_image(
        self,
        prompt: str,
        negative_prompt: str = "",
        steps: int | None = None,
        guidance_scale: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int = -1,
        num_images: int = 1,
        style: str = "None",
        request: gr.Request | None = None,
    ) -> dict:
        """Generate images; returns output_id, image (file), images (files), seed and model.

        steps, guidance_scale, width, height: left out = the image model's defaults.
        Image i of a batch uses seed + i. style: a name from the Style dropdown (assets/styles.csv).
        """
        image = self.services.image
        d = image.defaults
        result = image.generate(
            prompt,
            negative_prompt=negative_prompt,
            steps=d.steps if steps is None else steps,
            guidance_scale=d.guidance_scale if guidance_scale is None else guidance_scale,
            width=d.width if width is None else width,
            height=d.height if height is None else height,
            seed=seed,
            num_images=num_images,
            style=style,
            session_id=session_of(request),
        )
        files = [_file(p) for p in result["images"]]
        return {**result, "image": files[0], "images": files}

    def support_chat(
        self, message: str, history: list | None = None, ticket: str = "", request: gr.Request | None = None
    ) -> dict:
        """Ask the support bot; returns output_id, answer, sources [{id, title, score, ...}],
        handoff and ticket (the number of a handoff's ticket, also the key to its thread).

        ticket: an open ticket's number — the message then joins its thread for the operators,
        and the result has answer_mode "human", no sources, and an answer only the first time
        (saying a person will reply). A closed ticket's customer is answered by the bot again.
        """
        return self.services.support.chat(message, history or [], session_id=session_of(request), ticket=ticket)

    def support_updates(self, ticket: str) -> dict:
        """A ticket's thread, for its customer: {"status": "open"|"resolved", "stage":
        "waiting"|"operator"|"resolved"|"returned", "messages": [{"role": "customer"|"operator",
        "content", "ts"}] (oldest first), "csat"}. Poll it (every second or two) while open."""
        return self.services.support.handoffs.customer(ticket).public()

    def support_csat(self, ticket: str, score: int, comment: str = "", request: gr.Request | None = None) -> dict:
        """Score a closed ticket 1-5, with an optional comment: returns the stored record
        ({"ticket", "csat", "comment", ...}). One score per ticket: a second call returns the first."""
        return self.services.support.handoffs.rate(ticket, score, comment, session_id=session_of(request))

    def _operator(self, admin_token: str) -> Any:
        if not is_admin(self.services.settings, admin_token):
            raise AigcError("wrong_token")
        return self.services.support.handoffs

    def handoff_queue(self, admin_token: str, status: str = "open") -> list[dict]:
        """The operators' queue, oldest first: [{ticket, ts, reason, stage, unread, summary,
        messages (the bot conversation), thread}]. status: open, resolved, returned or all."""
        return [
            {
                "ticket": t.ticket,
                "ts": t.ts,
                "reason": t.reason,
                "stage": t.stage,
                "unread": t.unread,
                "summary": t.summary,
                "messages": t.messages,
                "thread": t.public()["messages"],
                "csat": t.csat,
            }
            for t in self._operator(admin_token).queue(status)
        ]

    def handoff_reply(self, ticket: str, message: str, admin_token: str) -> dict:
        """An operator's reply: it shows in the customer's chat on their next poll. Returns the
        thread as /support_updates does. Refused without the admin token."""
        # The reply itself marks the customer's messages read (nothing is marked when it is refused).
        return self._operator(admin_token).reply(ticket, message).public()

    def handoff_resolve(
        self, ticket: str, admin_token: str, save_to_kb: bool = False, resolution: str = "", question: str = ""
    ) -> dict:
        """Resolve a ticket; the customer is then asked for a 1-5 score. resolution: the answer
        (empty = the operator's last reply); save_to_kb: also a verified KB answer to question
        (empty = the customer's last real question), which the bot cites from now on."""
        self._operator(admin_token)
        done = self.services.support.resolve_handoff(
            ticket, resolution, save_as_answer=bool(save_to_kb), question=question
        )
        return {
            "ticket": done.ticket,
            "status": done.status,
            "resolution": done.resolution,
            "question": done.question,
            "kb_entry": done.kb_entry,
        }

    def rate(
        self,
        output_id: str,
        rating: str,
        comment: str = "",
        idempotency_key: str = "",
        item: int | None = None,
        correction: str = "",
        request: gr.Request | None = None,
    ) -> dict:
        """Rate an output: rating is "up" or "down"; returns {"saved": true, "record_id": ...}.

        correction (optional): a better answer to a text output; training prefers it to the output.

        idempotency_key (optional, 8-128 characters, e.g. a UUID per rating): send the same key
        when retrying, and the first rating's record_id comes back with nothing stored twice.
        item: which image of a batch (0-based); empty = the whole output.
        """
        record = self.services.feedback.rate(
            output_id,
            rating,
            comment,
            session_id=session_of(request),
            idempotency_key=idempotency_key or None,
            item=item,
            correction=correction,
        )
        return {"saved": True, "record_id": record.id}

    def health(self) -> dict:
        """Which models are loaded, the profile, the data dir and the app version.

        Also a plain ``GET /healthz`` (see ``ui/demo.launch_options``), which skips the queue.
        """
        return self.services.health()

    def arena_text(
        self,
        prompt: str,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        seed: int = -1,
        request: gr.Request | None = None,
    ) -> dict:
        """A blind text battle: two contestants answer the same prompt with the same seed.

        Returns {pair_id, a: {output_id, text}, b: {output_id, text}} — no contestant names
        until /arena_vote. max_new_tokens, when given, caps both answers; temperature applies
        only to contestants that set none (the default ones do: sampling is what they compare).
        """
        last = None
        for step in self.services.arena.text_battle(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, session_id=session_of(request)
        ):
            last = step
        assert last is not None and last.pair is not None
        pair = last.pair
        return {
            "pair_id": pair.pair_id,
            "a": {"output_id": pair.a.output_id, "text": last.a},
            "b": {"output_id": pair.b.output_id, "text": last.b},
        }

    def arena_image(
        self,
        prompt: str,
        seed: int = -1,
        width: int | None = None,
        height: int | None = None,
        request: gr.Request | None = None,
    ) -> dict:
        """A blind image battle: {pair_id, a: {output_id, image}, b: {output_id, image}}."""
        services = self.services
        pair = services.arena.image_battle(
            prompt, seed=seed, width=width, height=height, session_id=session_of(request)
        )
        out: dict[str, Any] = {"pair_id": pair.pair_id}
        for side in ("a", "b"):
            output = services.feedback.find_output(getattr(pair, side).output_id)
            path = str(output.output.get("path") or "") if output else ""
            out[side] = {"output_id": getattr(pair, side).output_id, "image": _file(path)}
        return out

    def arena_vote(
        self, pair_id: str, choice: str, reason: str = "", comment: str = "", request: gr.Request | None = None
    ) -> dict:
        """Vote on a pair: choice is a, b, tie or both_bad. Returns {saved, record_id, a_model,
        b_model, choice, first_vote}; voting again on a pair returns the first vote."""
        reason = clean_text(reason, name="reason", max_chars=500, required=False)  # text, and short
        reasons = [r.strip() for r in reason.split(",")] if reason else None
        record, new = self.services.arena.vote(
            pair_id, choice, reasons=reasons, comment=comment, session_id=session_of(request)
        )
        return {
            "saved": True,
            "record_id": record["id"],
            "choice": record["choice"],
            "first_vote": new,
            "a_model": record["a"]["contestant"],
            "b_model": record["b"]["contestant"],
        }
