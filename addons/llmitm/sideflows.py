"""The upstream side of a translated flow, as its own flow in mitmweb.

A translated flow has two conversations: the app's (its request, the answer in its protocol) and the
upstream's (the translated request, the upstream's raw answer). The main flow is restored to show the
app's side; a second flow shows the upstream's, so a protocol mismatch can be read field by field.
Built only where a view keeps flows (mitmweb, the console): mitmdump has none to add it to.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http

from .credentials import redact

log = logging.getLogger(__name__)


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
