"""The upstream side of a translated flow, as its own flow in mitmweb.

A translated flow has two conversations: the app's (its request, the answer in its protocol) and the
upstream's (the translated request, the upstream's raw answer). The main flow is restored to show the
app's side; a second flow shows the upstream's, so a protocol mismatch can be read field by field.
Built only where a view keeps flows (mitmweb, the console): mitmdump has none to add it to.

The same exchange's four bodies (app request, upstream request, upstream response, app response) are
also stored on the flow itself, `flow.metadata["llmitm_bodies"]`, for the "llmitm: translation" view
and `llmitm.export`. mitmproxy saves flow metadata with the flow (tnetstring), so the record holds
only bytes, strings and numbers, each body bounded, and no header: bodies carry no credential.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.net import encoding

from .credentials import redact

log = logging.getLogger(__name__)

BODIES_KEY = "llmitm_bodies"
MAX_KEPT_BODY = 2 * 1024 * 1024  # bytes per body; a longer one is cut and named in "truncated"


def views_enabled() -> bool:
    return ctx.master is not None and ctx.master.addons.get("view") is not None


def publish_upstream_side(
    flow: http.HTTPFlow,
    client_request: http.Request,
    upstream_response: http.Response,
    upstream_body: bytes,
) -> None:
    """Show the app's request on `flow` and add a flow for the upstream exchange beside it."""
    side = flow.copy()  # a copy gets a new id
    side.request = flow.request.copy()  # as it went upstream (credentials already masked)
    side.response = upstream_response.copy()
    side.response.data.content = upstream_body
    side.comment = f"llmitm: upstream side of flow {flow.id[:8]} (raw, before translation)\n{flow.comment}"
    side.metadata["llmitm_side_of"] = flow.id
    redact(client_request)  # the app's own credential, masked like everything already sent
    flow.request = client_request
    flow.comment += f"\nupstream side: flow {side.id[:8]}"
    try:
        ctx.master.addons.get("view").add([side])
    except Exception as e:  # a UI nicety must never break the flow
        log.debug("llmitm: could not add the upstream-side flow: %s", e)


def publish_bodies(flow: http.HTTPFlow, bodies: Any, plan: Any) -> None:
    """Store an exchange's four bodies (`exchange.Bodies`) and how to read them on the flow.
    `plan` is the `plan.Forward` that sent it: protocols and paths."""
    if not views_enabled():
        return
    upstream = bodies.upstream_response
    if upstream is not None and bodies.upstream_content_encoding:
        try:
            upstream = encoding.decode(upstream, bodies.upstream_content_encoding)
        except ValueError:  # shown as it came; the view says it cannot read it
            pass
    app_response = bodies.app_response
    if app_response is None and flow.response is not None:
        app_response = flow.response.get_content(strict=False)
    if upstream is None and plan.translation is None:  # passed through: the app got the upstream's bytes
        upstream = app_response
    record: dict[str, Any] = {
        "client_protocol": plan.client_protocol or "",
        "upstream_protocol": plan.upstream_protocol,
        "app_host": bodies.app_host or flow.request.pretty_host,
        "client_path": _without_query(bodies.app_path or flow.request.path),
        "upstream_path": _without_query("/" + plan.upstream_path.lstrip("/")),
        "translated": plan.translation is not None,
        "upstream_status": bodies.upstream_status or 0,
        "upstream_content_type": bodies.upstream_content_type or "",
        "app_status": flow.response.status_code if flow.response is not None else 0,
        "app_content_type": flow.response.headers.get("content-type", "") if flow.response is not None else "",
        "truncated": [],
    }
    for name, body in (("app_request", bodies.app_request), ("upstream_request", bodies.upstream_request),
                       ("upstream_response", upstream), ("app_response", app_response)):
        if body is None:
            continue
        if len(body) > MAX_KEPT_BODY:
            record["truncated"].append(name)
            body = body[:MAX_KEPT_BODY]
        record[name] = bytes(body)
    flow.metadata[BODIES_KEY] = record



def _without_query(path: str) -> str:
    """A path without its query: Gemini apps may put their key there (`?key=`)."""
    return path.split("?")[0]
