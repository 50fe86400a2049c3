"""What every tab shares: the error edge, the session code, remembered state.

``user_errors`` is the one place where exceptions meet the user: an ``AigcError``
becomes ``gr.Error`` with its message (HTML-escaped: it may quote user input); any
other exception is logged with its traceback and shown as a generic message.
"""

from __future__ import annotations

import functools
import hmac
import html
import inspect
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from aigc_demo.config import Settings
from aigc_demo.errors import AigcError
from aigc_demo.ui.i18n import lang_of

log = logging.getLogger("aigc_demo.ui")

GENERIC_ERROR = "Something went wrong on our side; the team has the details in the server log. Please try again."


# What a tab's ``build`` may return: a function to run when the page loads, and its outputs.
OnLoad = tuple[Callable[..., Any], list[Any]] | tuple[Callable[..., Any], list[Any], list[Any]]
"""What a tab runs when the page loads: (fn, outputs) or (fn, outputs, inputs)."""


def remembered(component: Any, store: Any, pack: Callable[[Any], Any]) -> None:
    """Keep ``component``'s value (via ``pack``) in the browser's ``store`` (a gr.BrowserState),
    with the session code it belongs to, whenever it changes."""

    def save(value: Any, request: gr.Request) -> dict[str, Any]:
        return {"session": session_of(request), "value": pack(value)}

    component.change(save, [component], [store], api_visibility="private", queue=False)


def recalled(saved: Any, request: gr.Request | None) -> Any:
    """What ``remembered`` stored, if it belongs to this page's session (a shared laptop in a
    user-testing session must not show the previous participant's conversation); else None."""
    if isinstance(saved, dict) and saved.get("session") and saved.get("session") == session_of(request):
        return saved.get("value")
    return None


def to_gr_error(exc: BaseException, lang: str = "en") -> gr.Error:
    """An API error: the message in the caller's language (its Accept-Language or ``?lang``;
    clients that send neither, like gradio_client, get English)."""
    if isinstance(exc, AigcError):
        return gr.Error(html.escape(exc.localized(lang), quote=False), print_exception=False)
    log.exception("unexpected error in a handler", exc_info=exc)
    return gr.Error(GENERIC_ERROR, print_exception=False)


def user_errors(fn: Callable[..., Any], *, outputs: int | None = None) -> Callable[..., Any]:
    """Wrap a handler (plain or generator) so no traceback ever reaches a user.

    With ``outputs`` (a UI handler's output count), an ``AigcError`` becomes a warning
    toast and every output is left as it was (``gr.skip()``): the user's input and the
    previous result stay on screen, and no component shows a red error badge. Without
    it (API endpoints), it becomes ``gr.Error``, which clients receive as an error.

    The message is in the page's language, which only the request tells: a handler that
    does not take one (``request: gr.Request``) gets one anyway — the wrapper declares an
    extra ``gr.Request`` parameter, which Gradio fills, and drops it before calling ``fn``.
    (Handlers without it used to answer a Chinese page in English.)
    """

    def unchanged() -> Any:
        # One output takes a bare value: Gradio would read a 1-tuple as the value itself.
        return gr.skip() if outputs == 1 else tuple(gr.skip() for _ in range(outputs or 0))

    def handle(exc: Exception, args: tuple, kwargs: dict) -> tuple[Any, ...]:
        request = _request_in(args, kwargs)
        if outputs is not None and isinstance(exc, AigcError):
            gr.Warning(html.escape(exc.localized(lang_of(request)), quote=False))
            return unchanged()
        raise to_gr_error(exc, lang_of(request) if request is not None else "en") from None

    def result(value: Any) -> Any:
        # "Nothing changed" ({}, e.g. a poll's tick) leaves every output as it is: Gradio 6
        # reads an empty dict as too few values and shows an error badge on every output.
        return unchanged() if outputs and isinstance(value, dict) and not value else value

    signature = inspect.signature(fn)
    hints = {**getattr(fn, "__annotations__", {})}
    takes_request = any(h in (gr.Request, "gr.Request", "gr.Request | None") for h in hints.values())
    extended = None if takes_request else _with_extra_request(signature)

    def split(args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple]:
        """(args for fn, kwargs for fn, args that carry the request for ``handle``)."""
        if extended is None:
            return args, kwargs, args
        kwargs = dict(kwargs)
        request = kwargs.pop(EXTRA_REQUEST, None)
        if request is None and args and isinstance(args[-1], gr.Request):
            args, request = args[:-1], args[-1]
        return args, kwargs, (*args, request)

    wrapped = _guarded(fn, split, handle, result)
    if extended is not None:
        wrapped.__signature__ = extended  # type: ignore[attr-defined]
        wrapped.__annotations__ = {**hints, EXTRA_REQUEST: gr.Request}
    return wrapped


def _request_in(args: tuple, kwargs: dict) -> gr.Request | None:
    """The first ``gr.Request`` among a handler's arguments, if any."""
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)


def _with_extra_request(signature: inspect.Signature) -> inspect.Signature | None:
    """``signature`` with an extra optional ``gr.Request`` parameter (``EXTRA_REQUEST``) for
    Gradio to fill; None where it cannot take one: after ``*args`` or keyword-only parameters."""
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        return None
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if any(p.kind is p.KEYWORD_ONLY for p in params):
        return None
    extra = inspect.Parameter(
        EXTRA_REQUEST, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request
    )
    return signature.replace(parameters=[*params, extra])


def _guarded(
    fn: Callable[..., Any],
    split: Callable[[tuple, dict], tuple[tuple, dict, tuple]],
    handle: Callable[[Exception, tuple, dict], Any],
    result: Callable[[Any], Any],
) -> Callable[..., Any]:
    """``fn`` (plain or generator) with its arguments ``split``, each value it returns or yields
    passed through ``result``, and its exceptions, other than ``gr.Error``, turned by ``handle``
    into its result (a generator yields it)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, kwargs, seen = split(args, kwargs)
            try:
                for value in fn(*args, **kwargs):
                    yield result(value)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - the edge
                yield handle(exc, seen, kwargs)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args, kwargs, seen = split(args, kwargs)
        try:
            return result(fn(*args, **kwargs))
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the edge
            return handle(exc, seen, kwargs)

    return wrapper


EXTRA_REQUEST = "aigc_request"


def is_admin(settings: Settings, token: object) -> bool:
    """Constant-time token check; admin views stay closed while AIGC_ADMIN_TOKEN is unset.
    Anything but a string (an API caller's list, number or null) is simply not the token."""
    expected = settings.admin_token
    given = token if isinstance(token, str) else ""
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


class StopFlags:
    """A Stop button per browser session that lets the running handler finish cleanly.

    Gradio's ``cancels`` kills the handler, so a partial answer could not be kept and
    rated; instead the handler polls its flag (``start``) and the Stop button sets it.
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}

    @contextmanager
    def start(self, session: str) -> Iterator[threading.Event]:
        flag = self._flags[session] = threading.Event()
        try:
            yield flag
        finally:
            if self._flags.get(session) is flag:
                del self._flags[session]

    def stop(self, session: str) -> None:
        flag = self._flags.get(session)
        if flag is not None:
            flag.set()


def toggle_stop(running: bool) -> tuple[Any, Any]:
    """Updates for (Generate, Stop) buttons."""
    return gr.update(visible=not running), gr.update(visible=running)


SESSION_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def session_of(request: gr.Request | None) -> str:
    """The user-testing session code from the page URL (``?session=CODE``), else Gradio's
    per-tab session hash. A facilitator hands out links with a code; every event and
    rating of that participant then carries it, and ``report --session CODE`` finds them."""
    if request is None:
        return ""
    try:
        code = (request.query_params or {}).get("session") or ""
    except Exception:  # noqa: BLE001 - API calls have no page URL
        code = ""
    if code and SESSION_CODE.match(code):
        return code
    return getattr(request, "session_hash", None) or ""


def scroll_to(selector: str, inputs: int = 0) -> str:
    """Client-side: on a phone, bring the result into view when the action starts (the
    parameters above would otherwise leave it below the screen).

    Gradio runs ``js`` before the event's function and sends what it returns as that
    function's inputs, so it hands back the first ``inputs`` values it was given unchanged.
    """
    return (
        "(...args) => { if (window.innerWidth < 700) { const el = document.querySelector(" + repr(selector) + ");"
        " if (el) el.scrollIntoView({behavior: 'smooth', block: 'start'}); }"
        f" return args.slice(0, {inputs}); }}"
    )
