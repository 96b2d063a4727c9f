"""One guard for every hook: a bug in llmitm never lets an AI request leave unrouted.

mitmproxy logs a hook's exception and lets the flow continue as it is (MITMPROXY.md §2, "Errors") —
to the original provider with the app's own key, or with the upstream's untranslated answer. So each
hook runs inside `fail_closed`, which answers such a flow with a 500 in the app's own protocol that
says the fault is llmitm's, marks the flow (`flow.metadata["llmitm_bug"]`, the comment, a marker in
mitmweb), logs the traceback once, and frees the flow's key lease without judging the key.

What the app gets depends on how far the flow went:
- `requestheaders`/`request`: `flow.response` is set, so nothing goes upstream;
- `responseheaders`: status and headers become the error's, and a stream callable swaps the upstream
  body for the error body (the last moment the wire can still change, §5);
- `response`: a buffered answer is replaced; a streamed one is already with the app;
- `error`: the flow already failed; only the bookkeeping is at stake.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from mitmproxy import http

from . import credentials
from .plan import protocol_of
from .protocols.errors import render_error

log = logging.getLogger(__name__)

BUG_MARK = ":bug:"
REQUEST_HOOKS = frozenset({"requestheaders", "request"})


class Guarded(Protocol):
    """What the guard needs from the addon: drop the flow's per-flow state after a failure, returning
    the client protocol it knew (None if it had none)."""

    def abandon(self, flow: http.HTTPFlow) -> str | None: ...


def fail_closed(hook: Callable) -> Callable:
    """Wrap a flow hook (sync or async) of a `Guarded` addon so that no exception escapes it."""
    name = hook.__name__
    if inspect.iscoroutinefunction(hook):
        @functools.wraps(hook)
        async def guarded_async(self: Guarded, flow: http.HTTPFlow) -> None:
            try:
                await hook(self, flow)
            except Exception as e:
                contain(self, name, flow, e)
        return guarded_async

    @functools.wraps(hook)
    def guarded(self: Guarded, flow: http.HTTPFlow) -> None:
        try:
            hook(self, flow)
        except Exception as e:
            contain(self, name, flow, e)
    return guarded


def contain(addon: Guarded, hook: str, flow: http.HTTPFlow, exc: Exception) -> None:
    """Answer, mark and log a flow whose `hook` raised `exc` (see the module docstring)."""
    log.error("llmitm: bug in the %s hook for %s %s", hook, flow.request.method, flow.request.pretty_url, exc_info=exc)
    try:
        known = addon.abandon(flow)
    except Exception:
        log.exception("llmitm: cleaning up after the bug failed too")
        known = None
    protocol = known or protocol_of(flow.request.method, flow.request.path)
    message = bug_message(f"in its {hook} hook", exc)
    body = render_error(protocol, 500, message)
    if hook in REQUEST_HOOKS:
        flow.response = http.Response.make(500, body, {"content-type": "application/json", "x-llmitm-error": "bug"})
    elif hook == "responseheaders" and flow.response is not None:
        _swap_for_error(flow, body)
    elif hook == "response" and flow.response is not None and not flow.response.stream:
        _swap_headers(flow.response)
        flow.response.content = body
    credentials.redact(flow.request)
    flow.metadata["llmitm_bug"] = f"{hook}: {type(exc).__name__}"
    flow.comment = f"llmitm: {message}" + (f"\n{flow.comment}" if flow.comment else "")
    flow.marked = BUG_MARK


def bug_message(where: str, exc: BaseException) -> str:
    """What the app is told about llmitm's own bug. Only the exception's type: its text may quote
    request data (a key, in the worst case)."""
    return f"llmitm internal error (a bug in llmitm, not in your request or the provider) {where}: {type(exc).__name__}"


def _swap_headers(response: http.Response) -> None:
    response.status_code = 500
    response.reason = "Internal Server Error"
    for name in ("content-encoding", "content-length", "transfer-encoding"):
        response.headers.pop(name, None)
    response.headers["content-type"] = "application/json"
    response.headers["x-llmitm-error"] = "bug"


def _swap_for_error(flow: http.HTTPFlow, body: bytes) -> None:
    response = flow.response
    assert response is not None
    _swap_headers(response)
    if flow.request.http_version.startswith("HTTP/1"):
        response.headers["transfer-encoding"] = "chunked"  # MITMPROXY.md §5, trap 2
    response.stream = ReplaceBody(body)


class ReplaceBody:
    """A stream callable that drops the upstream body and sends `body` instead, at its end."""

    def __init__(self, body: bytes):
        self.body = body

    def __call__(self, data: bytes) -> bytes | Iterable[bytes]:
        return [] if data else self.body  # [] holds back: never b"" mid-stream (trap 1)


def guarded_hooks(addon: Any) -> list[str]:
    """The names of `addon`'s hooks that run behind the guard (for tests and reviews)."""
    return [name for name, fn in inspect.getmembers(type(addon)) if getattr(fn, "__wrapped__", None) is not None]
