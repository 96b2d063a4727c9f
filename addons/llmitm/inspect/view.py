"""The "llmitm" contentview: a flow's AI request or response as a transcript, on mitmproxy 11 and 12.

mitmproxy 12 replaced the contentview API (MITMPROXY.md §7): 11 calls `View.__call__` and wants
`(description, lines)`; 12 calls `Contentview.prettify` and wants text. Both classes below are thin
shells around `render_flow_message`, which picks the protocol, parses through `adapter` and renders
through `transcript`. Feature detection, not version parsing: `NEW_VIEW_API`.
"""

from __future__ import annotations

from mitmproxy import contentviews, http

from . import adapter, translation
from .transcript import Transcript, render_request, render_response

NEW_VIEW_API = hasattr(contentviews, "Contentview")
VIEW_NAME = "llmitm"
PRIORITY = 3.0  # JSON claims application/json with 1; any AI body on a generation endpoint is ours


def message_protocol(flow: http.HTTPFlow, message: http.Message) -> str | None:
    """The protocol `message`'s body is written in. The request's path says it for the request, and
    for the response too, except on a translated flow that still shows the upstream request (no
    mitmweb view restored the app's): its response was rewritten into the app's protocol."""
    protocol = adapter.protocol_of(flow.request.method, flow.request.path)
    if protocol is None or message is flow.request:
        return protocol
    record = flow.metadata.get("llmitm") if isinstance(flow.metadata.get("llmitm"), dict) else {}
    if record.get("translated") and "llmitm_side_of" not in flow.metadata and record.get("client_protocol"):
        return record["client_protocol"]
    return protocol


def message_priority(data: bytes, flow, http_message) -> float:
    if not data or not isinstance(flow, http.HTTPFlow) or http_message is None:
        return -1
    return PRIORITY if message_protocol(flow, http_message) else -1


def render_flow_message(data: bytes, flow: http.HTTPFlow, message: http.Message) -> Transcript:
    """Raises ValueError for a body that is not on a generation endpoint (mitmproxy then shows Raw)."""
    protocol = message_protocol(flow, message)
    if protocol is None:
        raise ValueError("not a request or response of a known AI generation endpoint")
    side = side_of(flow, protocol)
    if isinstance(message, http.Request):
        out = render_body(protocol, data, path=flow.request.path, side=side)
        _prefix_section(flow, out)
        return out
    assert isinstance(message, http.Response)
    content_type = message.headers.get("content-type", "").split(";")[0].strip().lower() or None
    return render_body(protocol, data, status=message.status_code, content_type=content_type, side=side,
                       timing=timings(flow))


def render_body(protocol: str, data: bytes, *, path: str | None = None, status: int | None = None,
                content_type: str | None = None, side: str = "", timing: list[tuple[str, str]] = ()) -> Transcript:
    """Any one body, without a flow: a request when `path` is given (the path the body was sent to;
    Gemini carries model and streaming there), else a response. The entry point for showing a flow's
    four bodies (app request, upstream request, upstream response, app response) side by side."""
    out = Transcript()
    if path is not None:
        render_request(adapter.parse_request(protocol, data, path), out, side)
    else:
        render_response(adapter.parse_response(protocol, status, data, content_type), out, timing, side)
    return out


def side_of(flow: http.HTTPFlow, protocol: str) -> str:
    """Which conversation a body of a translated flow belongs to: the app's, or the upstream's
    (llmitm shows the upstream's as a second flow in mitmweb)."""
    if "llmitm_side_of" in flow.metadata:
        return "upstream side, before translation"
    record = flow.metadata.get("llmitm")
    if not isinstance(record, dict) or not record.get("translated"):
        return ""
    return "app's side" if protocol == record.get("client_protocol") else "upstream side"


def timings(flow: http.HTTPFlow) -> list[tuple[str, str]]:
    """What the flow's timestamps tell. mitmproxy keeps no per-chunk times, so for a stream the
    first byte (response headers) is the nearest known point to the first token."""
    req, resp = flow.request, flow.response
    if resp is None or not req.timestamp_start or not resp.timestamp_start:
        return []
    out = []
    sent = req.timestamp_end or req.timestamp_start
    out.append(("time to first byte (response headers)", f"{(resp.timestamp_start - sent) * 1000:,.0f} ms"))
    if resp.timestamp_end:
        out.append(("total", f"{(resp.timestamp_end - req.timestamp_start) * 1000:,.0f} ms"))
    return out


def _prefix_section(flow: http.HTTPFlow, out: Transcript) -> None:
    """What the conversation tracker recorded when this request went out (see inspect.addon)."""
    info = flow.metadata.get("llmitm_inspect")
    if not isinstance(info, dict) or "llmitm_side_of" in flow.metadata:
        return
    out.heading("what changed since the previous request")
    prefix = info.get("prefix")
    if not isinstance(prefix, dict) or not prefix.get("previous"):
        out.line("no earlier request of this conversation seen (same client, host, path and model)", depth=1)
        return
    out.pair("previous request", f"flow {str(prefix['previous'])[:8]} ({prefix.get('previous_messages')} messages)", 1)
    if prefix.get("unchanged"):
        out.line("prompt prefix unchanged: the whole earlier prompt can be served from the provider's cache", depth=1)
        return
    out.pair("prefix differs at", str(prefix.get("describe")), 1)
    out.line("the prompt cache cannot be reused from here on", "error", 1)
    out.pair("before", repr(prefix.get("before", "")), 1)
    out.pair("now", repr(prefix.get("after", "")), 1)


def _description(flow: http.HTTPFlow, message: http.Message) -> str:
    protocol = message_protocol(flow, message) or ""
    return f"llmitm: {adapter.PROTOCOL_TITLES.get(protocol, protocol)}"


if NEW_VIEW_API:

    class LlmitmView(contentviews.Contentview):
        """mitmproxy 12: `prettify` returns the transcript as text."""

        view_name = VIEW_NAME

        @property
        def name(self) -> str:
            return self.view_name

        @property
        def syntax_highlight(self):
            return "none"

        def prettify(self, data: bytes, metadata) -> str:
            return self.render(data, metadata.flow, metadata.http_message).text()

        def render_priority(self, data: bytes, metadata) -> float:
            return self.priority(data, metadata.flow, metadata.http_message)

        render = staticmethod(render_flow_message)
        priority = staticmethod(message_priority)

else:

    class LlmitmView(contentviews.View):  # type: ignore[no-redef]
        """mitmproxy 11: `__call__` returns (description, lines of (style, text) segments)."""

        name = VIEW_NAME

        def __call__(self, data: bytes, *, flow=None, http_message=None, **unknown):
            if not isinstance(flow, http.HTTPFlow) or http_message is None:
                raise ValueError("the llmitm view needs the flow")
            transcript = self.render(data, flow, http_message)
            description = _description(flow, http_message) if self.name == VIEW_NAME else self.name
            return description, iter(transcript.lines)

        def render_priority(self, data: bytes, *, flow=None, http_message=None, **unknown) -> float:
            return self.priority(data, flow, http_message)

        render = staticmethod(render_flow_message)
        priority = staticmethod(message_priority)


class TranslationView(LlmitmView):
    """"llmitm: translation": a translated flow's app and upstream bodies side by side, compared field
    by field (translation.py). Chosen from the View menu; the transcript view stays the default."""

    name = view_name = translation.VIEW_NAME  # type: ignore[assignment]
    render = staticmethod(translation.render_flow)
    priority = staticmethod(translation.render_priority)


def register() -> list[LlmitmView]:
    """Add the views; on mitmproxy 11, first drop any left by an earlier load (a script reload that
    skipped `done`), since 11 refuses a second view of the same name."""
    views = [LlmitmView(), TranslationView()]
    for view in views:
        if not NEW_VIEW_API and (stale := contentviews.get(view.name)) is not None:
            contentviews.remove(stale)
        contentviews.add(view)
    return views


def unregister(views: list[LlmitmView]) -> None:
    """mitmproxy 11 refuses a second view of the same name (a script reload would fail); 12 replaces
    views by name and deprecates `remove`."""
    for view in views:
        if not NEW_VIEW_API and view in contentviews.views:
            contentviews.remove(view)
