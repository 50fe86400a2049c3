"""Who gets into Gradio's queue: generation is capped, and fairly shared; nothing else waits.

Gradio's own ``max_size`` counts every waiting event together, so a flood of generations
used to fill it and then ratings, support answers and ``/health`` calls were refused too.
Here only generation is capped: text, images and Arena battles each hold
``AIGC_QUEUE_MAX_SIZE`` waiting requests, and one session (a browser tab, a ``gradio_client.Client``) may have at most
``AIGC_SESSION_QUEUE`` of them waiting: the rest of its requests are refused at once, with a
message, instead of pushing everyone else back. Everything else is admitted: ratings have no
concurrency limit and run as they arrive, and a support answer takes ~20 ms.

It wraps the queue's ``push`` (Gradio 6.31's admission point). A refusal is answered as a
validation error (HTTP 422 with Gradio's ``validate`` detail), the one refusal whose message
both the browser (an error toast) and ``gradio_client`` (``ValidationError``) show as written;
Gradio's own "queue full" (HTTP 503) reaches them only as a fixed English sentence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
import traceback
import types
from collections import deque
from typing import Any, Literal

import gradio as gr
from starlette.responses import JSONResponse

from aigc_demo.config import Settings
from aigc_demo.ui.i18n import lang_of

log = logging.getLogger(__name__)

GENERATION_GROUPS = ("llm", "image", "arena")


def busy_message(waiting: int, lang: str | None = None) -> str:
    en = f"The generator is busy: {waiting} requests are waiting. Please try again in a minute."
    zh = f"生成服务繁忙：已有 {waiting} 个请求在排队，请稍后再试。"
    return _in(lang, en, zh)


def fair_share_message(mine: int, lang: str | None = None) -> str:
    en = f"You already have {mine} requests waiting; send the next one when they are done."
    zh = f"您已有 {mine} 个请求在排队，请等它们完成后再提交。"
    return _in(lang, en, zh)


def _in(lang: str | None, en: str, zh: str) -> str:
    return zh if lang == "zh" else en if lang == "en" else f"{en} / {zh}"


def page_language(request: Any) -> str | None:
    """The page's language for a browser (its URL's ``lang``, else Accept-Language); None for
    an API client, which gets both languages."""
    headers = getattr(request, "headers", None) or {}
    return lang_of(request) if headers.get("referer") else None


UNKNOWN_ENDPOINT = "Unknown endpoint: no function has that name or index. / 未知接口：没有这个名称或编号的功能。"


# What gradio's Queue.push returns: (accepted, event id or error message, status).
PushResult = tuple[bool, Any, Literal["success", "error", "queue_full", "validator_error"]]


def _refused(message: str) -> PushResult:
    return (
        False,
        [{"__type__": "validate", "is_valid": False, "message": message, "parameter_name": "request"}],
        "validator_error",
    )


def install(demo: gr.Blocks, settings: Settings) -> None:
    """Put the admission rules in front of ``demo``'s queue (call after ``demo.queue()``)."""
    queue = demo._queue
    push = queue.push

    def waiting(group: str) -> list[Any]:
        events = queue.event_queue_per_concurrency_id.get(group)
        return list(events.queue) if events is not None else []

    async def admitted_push(body: Any, request: Any, username: str | None) -> PushResult:
        from gradio import route_utils

        try:
            fn = route_utils.get_fn(demo, None, body)
        except (KeyError, IndexError, TypeError, route_utils.FnIndexInferError):
            return False, UNKNOWN_ENDPOINT, "error"
        if not isinstance(body.data, list):
            return False, "data must be a list of the endpoint's arguments / data 必须是参数列表", "error"
        if len(body.data) < len(fn.inputs):
            # Missing trailing arguments take their documented defaults (as gradio_client
            # does), so a raw HTTP caller gets the endpoint's own message ("prompt is empty")
            # instead of Gradio's bare {"error": null}.
            body.data = [*body.data, *(getattr(c, "value", None) for c in fn.inputs[len(body.data) :])]
        group, lang = fn.concurrency_id, page_language(request)
        if group not in GENERATION_GROUPS:  # ratings, support answers, health: never turned away
            return await push(body, request, username)
        events = queue.event_queue_per_concurrency_id.get(group)
        if (
            events is None
            or events.concurrency_limit is None
            or (events.current_concurrency + len(events.queue) < events.concurrency_limit)
        ):
            # A free slot: this request will not wait, so it takes nobody's place in line
            # (a client's burst of four into sixteen free slots is not a flood).
            return await push(body, request, username)
        if body.session_hash:  # first the fair share, so a flooding client hears about its own requests
            mine = sum(1 for g in GENERATION_GROUPS for event in waiting(g) if event.session_hash == body.session_hash)
            if mine >= settings.session_queue:
                return _refused(fair_share_message(mine, lang))
        queued = waiting(group)
        if len(queued) >= settings.queue_max_size:
            log.warning("refused a %s request: %d waiting", group, len(queued))
            return _refused(busy_message(len(queued), lang))
        return await push(body, request, username)

    queue.push = admitted_push  # type: ignore[method-assign]


class PublicErrors:
    """ASGI middleware: clear answers where Gradio would give a bare 500 or take anything.

    - ``POST /gradio_api/call/<name>`` for a name that is not a public endpoint: 404 with a
      message (Gradio answers 500 Internal Server Error).
    - A request body over ``AIGC_MAX_REQUEST_MB``: 413 with a message, before anything reads
      it (uploads go to ``/gradio_api/upload``, capped by Gradio's ``max_file_size``).
    - ``POST /gradio_api/run/…`` and ``/gradio_api/api/…`` run a function *without the queue*,
      so they would skip the admission rules above and every concurrency limit, and Gradio
      answers a bad call with ``500 {"error": null}`` and prints the raw inputs (a token
      among them) to the log. The page uses them only for its instant, queue-free handlers
      (a gallery click, a preset's sliders). So: a queued function there is refused with 404
      and the route to use instead; a call whose argument count does not match is refused
      with 422 before Gradio sees it; only a well-formed call of a queue-free handler passes,
      and if that handler or a component refuses a value, the answer is 422 with a message and
      the log gets one line without the value (Gradio: 500 ``{"error": null}`` and the value).
    """

    def __init__(
        self, app: Any, *, demo: gr.Blocks, max_bytes: int, uploads: UploadQuota | None = None, proxy_hops: int = 0
    ) -> None:
        self.app, self.demo, self.max_bytes = app, demo, max_bytes
        self.uploads, self.proxy_hops = uploads, proxy_hops
        quiet_direct_call_errors()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path: str = scope.get("path", "")
        if path.startswith("/gradio_api/call/"):
            name = path.removeprefix("/gradio_api/call/").strip("/")
            if name not in self._public():
                return await JSONResponse({"error": UNKNOWN_ENDPOINT}, status_code=404)(scope, receive, send)
        if path.startswith(("/gradio_api/run/", "/gradio_api/api/")):
            body, refusal = await self._direct_call(path, scope, receive)
            if refusal is not None:
                return await refusal(scope, receive, send)
            token = _DIRECT_CALL.set(path.rsplit("/", 1)[-1][:60])
            try:
                return await self.app(scope, _replay(body), _bad_input_not_500(send))
            finally:
                _DIRECT_CALL.reset(token)
        if path.startswith("/gradio_api/upload") and self.uploads is not None:
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            client = _client_of(scope, headers, self.proxy_hops)
            over = self.uploads.admit(client, int(length) if length is not None and length.isdigit() else 0)
            if over is not None:
                return await JSONResponse({"error": over}, status_code=429)(scope, receive, send)
            receive = self.uploads.metered(client, receive)
        if not path.startswith("/gradio_api/upload"):
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                answer = JSONResponse({"error": too_large(int(length), self.max_bytes)}, status_code=413)
                return await answer(scope, receive, send)
            receive = _bounded(receive, self.max_bytes)
        return await self.app(scope, receive, send)

    async def _direct_call(self, path: str, scope: Any, receive: Any) -> tuple[bytes, JSONResponse | None]:
        """Read a direct call's body (bounded) and refuse it unless it is a well-formed call of
        a queue-free handler; return the body to replay to Gradio."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", JSONResponse({"error": "client disconnected"}, status_code=400)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return b"", JSONResponse({"error": too_large(size, self.max_bytes)}, status_code=413)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        name = path.split("/", 3)[3].strip("/")
        try:
            data = json.loads(body or b"{}")
            fn_index = data.get("fn_index") if isinstance(data, dict) else None
            fns = self.demo.fns
            fn = fns[fn_index] if isinstance(fn_index, int) else next(f for f in fns.values() if f.api_name == name)
        except (ValueError, KeyError, StopIteration, AttributeError):
            return body, JSONResponse({"error": UNKNOWN_ENDPOINT}, status_code=404)
        if fn.queue is not False:
            hint = f"/gradio_api/call/{fn.api_name}" if fn.api_name in self._public() else "gradio_client"
            message = (
                f"This route skips the queue; call this endpoint through {hint}. / 此路径绕过排队，请通过 {hint} 调用。"
            )
            return body, JSONResponse({"error": message}, status_code=404)
        args = data.get("data")
        if not isinstance(args, list) or len(args) != len(fn.inputs):
            message = f"data must be a list of {len(fn.inputs)} arguments / data 必须是 {len(fn.inputs)} 个参数的列表"
            return body, JSONResponse({"error": message}, status_code=422)
        return body, None

    def _public(self) -> set[str]:
        return {str(fn.api_name) for fn in self.demo.fns.values() if fn.api_name and fn.api_visibility != "private"}


# The route of the direct call being served, while it is (see _QuietTraceback).
_DIRECT_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar("direct_call", default=None)
BAD_INPUT = "bad input for this handler / 此处理函数的输入无效"


def _bad_input_not_500(send: Any) -> Any:
    """A direct call that Gradio answers ``500 {"error": null}`` (a value a component refuses,
    an index out of range) was the caller's mistake: answer 422 with a message instead."""
    failed = False

    async def shaped(message: Any) -> None:
        nonlocal failed
        if message["type"] == "http.response.start" and message.get("status") == 500:
            failed = True
            body = json.dumps({"error": BAD_INPUT}, ensure_ascii=False).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 422, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if failed:
            return  # Gradio's own body of the 500 is replaced above
        await send(message)

    return shaped


class _QuietTraceback(types.SimpleNamespace):
    """Stands in for ``traceback`` in ``gradio.routes``: a direct call that fails is logged as
    one line naming the route and the error's type. Gradio prints the whole exception, and a
    component's message quotes the value it refused (``Value: <what the caller sent> is not in
    the list of choices``), so anyone could write into the log, a secret pasted in the wrong
    field included."""

    def __getattr__(self, name: str) -> Any:
        return getattr(traceback, name)

    def print_exc(self, *args: Any, **kwargs: Any) -> None:
        route = _DIRECT_CALL.get()
        if route is None:
            return traceback.print_exc(*args, **kwargs)
        error = sys.exc_info()[1]
        log.warning("direct call to %s refused: %s", route, type(error).__name__)
        return None


def quiet_direct_call_errors() -> None:
    import gradio.routes

    if not isinstance(gradio.routes.traceback, _QuietTraceback):
        gradio.routes.traceback = _QuietTraceback()  # type: ignore[assignment]


class UploadQuota:
    """Upload bytes per client and for everyone together, over a sliding hour.

    Gradio's upload route needs no login and keeps what it receives, so without a bound one
    client could fill the disk at network speed. A request is refused (429) when its declared
    size would pass either budget; bytes are counted as they stream, and a body that passes a
    budget midway is cut off. The per-client key is the peer address, or behind a proxy (as on
    a Space, ``AIGC_PROXY_HOPS``) the address that proxy appended to ``X-Forwarded-For``: what a
    client writes into that header itself earns it no fresh budget.
    """

    WINDOW_S = 3600.0

    def __init__(self, *, per_client: int, total: int) -> None:
        self.per_client, self.total = per_client, total
        self._sent: deque[tuple[float, str, int]] = deque()  # oldest first
        self._mine: dict[str, int] = {}
        self._everyone = 0
        self._lock = threading.Lock()

    def used(self, client: str | None = None) -> int:
        with self._lock:
            self._prune(time.monotonic())
            return self._everyone if client is None else self._mine.get(client, 0)

    def admit(self, client: str, size: int) -> str | None:
        """A refusal message, or None when ``size`` more bytes fit both budgets."""
        with self._lock:
            self._prune(time.monotonic())
            over_mine = self._mine.get(client, 0) + size > self.per_client
            over_all = self._everyone + size > self.total
        if not (over_mine or over_all):
            return None
        mb = (self.per_client if over_mine else self.total) // (1024 * 1024)
        return (
            f"Upload limit reached ({mb} MB per hour); try again later. / 上传已达上限（每小时 {mb} MB），请稍后再试。"
        )

    def add(self, client: str, size: int) -> bool:
        """Count ``size`` bytes; False once a budget is passed (the caller stops reading)."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            self._sent.append((now, client, size))
            self._mine[client] = self._mine.get(client, 0) + size
            self._everyone += size
            return self._mine[client] <= self.per_client and self._everyone <= self.total

    def metered(self, client: str, receive: Any) -> Any:
        async def wrapped() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not self.add(client, len(message.get("body", b""))):
                log.warning("upload cut off: the hourly upload budget is spent")
                return {"type": "http.disconnect"}
            return message

        return wrapped

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - self.WINDOW_S:
            _, client, size = self._sent.popleft()
            self._everyone -= size
            self._mine[client] -= size
            if self._mine[client] <= 0:
                del self._mine[client]


def _client_of(scope: Any, headers: dict[bytes, bytes], proxy_hops: int) -> str:
    """Who is calling: the address our own proxies saw (``proxy_hops`` entries from the right of
    X-Forwarded-For: each proxy appends the address it was called from, and anything to their
    left is what the caller wrote), or the connection's address with no proxy in front."""
    hops = [h.strip() for h in headers.get(b"x-forwarded-for", b"").split(b",") if h.strip()]
    if proxy_hops and hops:
        return hops[-min(proxy_hops, len(hops))].decode("latin-1")
    client = scope.get("client")
    return str(client[0]) if client else "?"


def too_large(size: int, limit: int) -> str:
    return f"request too large: {size:,} bytes; the limit is {limit:,} / 请求过大：{size:,} 字节，上限为 {limit:,} 字节"


def _replay(body: bytes) -> Any:
    """A ``receive`` that hands the already-read body on once, then waits like the real one."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return replay


def _bounded(receive: Any, limit: int) -> Any:
    """A body sent without Content-Length (chunked) is cut off past ``limit``: the app sees
    the client disconnect instead of reading megabytes into memory."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                log.warning("request body over %d bytes cut off", limit)
                return {"type": "http.disconnect"}
        return message

    return wrapped


# Images, audio, video and frames may come from this server only (and data:/blob: URLs, which
# Gradio uses for uploads and previews). Model answers, KB articles and customers' messages are
# Markdown that the Chatbot renders: an ``![](https://…)`` in any of them — or a forged
# assistant turn in an API call's history, shown later in an operator's ticket view — would
# make every viewer's browser fetch a remote URL (a tracking pixel, an IP leak). The browser
# enforces this for every view at once; scripts and styles are left to Gradio's own sanitiser.
CONTENT_POLICY = (
    b"img-src 'self' data: blob:; media-src 'self' data: blob:; frame-src 'self'; "
    b"object-src 'none'; base-uri 'self'; form-action 'self'"
)


class NoRemoteContent:
    """ASGI middleware: the ``Content-Security-Policy`` above on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"content-security-policy"]
                message = {**message, "headers": [*headers, (b"content-security-policy", CONTENT_POLICY)]}
            await send(message)

        return await self.app(scope, receive, with_policy)
