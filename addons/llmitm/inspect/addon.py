"""The inspector's mitmproxy addons: the conversation tracker, the contentview, the commands.

Two objects because hook order matters (MITMPROXY.md §2: hooks run in chain order):
- `ConversationTracker` must run *before* llmitm's own addon: its `request` hook needs the app's
  body and credential as the app sent them, before llmitm translates the body and takes the key.
- `Inspect` runs *after* it: its `response`/`error` hooks count what llmitm published on the flow.

    tracker = ConversationTracker(); addons = [tracker, Llmitm(), Inspect()]
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import mitmproxy.flow
import mitmproxy.types
from mitmproxy import command, ctx, http

from ..bodylimits import BodyTooLarge, UnreadableEncoding, decode_capped
from . import adapter, export, view
from .prefix import Snapshot, extends, first_difference, snapshot
from .stats import FlowStats

TRACKED_BODY_LIMIT = 32 * 1024 * 1024  # the default max_body_bytes: larger requests are refused anyway

log = logging.getLogger(__name__)

MEMORY_SIZE = 200  # recent requests kept for "what changed since the previous request"
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")
KEYS_TIMEOUT = 10.0  # seconds to read the key table from the state store


def client_identity(flow: http.HTTPFlow) -> str:
    """Who sent a request: a digest of the app's credential (never the credential), else the proxy
    user, else the client's address. Must run before llmitm takes the credential off the flow."""
    secret = next((flow.request.headers[h] for h in CREDENTIAL_HEADERS if flow.request.headers.get(h)), None)
    secret = secret or flow.request.query.get("key")
    if secret:
        return "credential sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]
    auth = flow.metadata.get("proxyauth")
    if isinstance(auth, (tuple, list)) and auth:
        return f"proxy user {auth[0]}"
    return f"client {flow.client_conn.peername[0]}" if flow.client_conn.peername else "client unknown"


class Remembered(NamedTuple):
    key: tuple[str, str, str, str]
    flow_id: str
    snapshot: Snapshot


class ConversationMemory:
    """The last `size` requests; finds the one a new request extends and where its prefix changed."""

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self.recent: deque[Remembered] = deque(maxlen=size)

    def observe(self, key: tuple[str, str, str, str], flow_id: str, snap: Snapshot) -> dict:
        """Remember this request; return what the view shows (tnetstring-safe, for flow.metadata)."""
        previous = next((r for r in reversed(self.recent) if r.key == key and extends(r.snapshot, snap)), None)
        self.recent.append(Remembered(key, flow_id, snap))
        if previous is None:
            return {"previous": None}
        found: dict[str, Any] = {"previous": previous.flow_id, "previous_messages": len(previous.snapshot.messages)}
        difference = first_difference(previous.snapshot, snap)
        if difference is None:
            return {**found, "unchanged": True}
        return {**found, "unchanged": False, "describe": difference.describe(), "where": difference.where,
                "message": difference.message, "part": difference.part, "offset": difference.offset,
                "before": difference.before, "after": difference.after}


class ConversationTracker:
    """Records, per AI request, where its prompt prefix departs from the request it extends."""

    name = "llmitm_conversations"

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self.memory = ConversationMemory(size)
        self.active = True

    def running(self) -> None:
        # Only where flows are kept for viewing (mitmweb, the console): mitmdump has nobody to show
        # it to, and every AI request would pay for a second parse of its body.
        self.active = ctx.master.addons.get("view") is not None

    def request(self, flow: http.HTTPFlow) -> None:
        if not self.active or flow.response or flow.error or not flow.live:
            return
        protocol = adapter.protocol_of(flow.request.method, flow.request.path)
        if protocol is None:
            return
        try:
            # The raw bytes, decoded with the same ceiling llmitm itself uses: a small gzip body must not
            # inflate in the inspector before llmitm has refused it.
            body = decode_capped(flow.request.raw_content or b"", flow.request.headers.get("content-encoding"),
                                 TRACKED_BODY_LIMIT)
            parsed = adapter.parse_request(protocol, body, flow.request.path)
            if parsed.request is None:
                return
            client = client_identity(flow)
            key = (client, flow.request.pretty_host, flow.request.path.split("?")[0], parsed.request.model)
            prefix = self.memory.observe(key, flow.id, snapshot(parsed.request))
            flow.metadata["llmitm_inspect"] = {"client": client, "prefix": prefix}
        except (BodyTooLarge, UnreadableEncoding):
            return  # llmitm answers such a body itself; nothing to track
        except Exception:  # an inspection aid must never disturb the flow it inspects
            log.exception("llmitm: conversation tracking failed for %s", flow.request.pretty_url)


class Inspect:
    """The llmitm contentviews, `llmitm.stats`, `llmitm.keys` and `llmitm.export`."""

    name = "llmitm_inspect"

    def __init__(self) -> None:
        self.stats = FlowStats()
        self._view: Any = None

    def load(self, loader: Any) -> None:
        self._view = view.register()

    def done(self) -> None:
        if self._view is not None:
            view.unregister(self._view)
            self._view = None

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        record = flow.metadata.get("llmitm")
        if not isinstance(record, dict) or "llmitm_side_of" in flow.metadata:
            return
        response = flow.response
        latency = None
        if response is not None and response.timestamp_end and flow.request.timestamp_start:
            latency = response.timestamp_end - flow.request.timestamp_start
        status = response.status_code if response is not None else None
        self.stats.add(record, status, flow.error.msg if flow.error else None, latency)

    @command.command("llmitm.stats")
    def stats_command(self) -> Sequence[str]:
        """Requests, errors, tokens and latency per route, provider and key (keys masked)."""
        return self.stats.lines()

    @command.command("llmitm.keys")
    def keys_command(self) -> Sequence[str]:
        """Every pooled key (masked): state, cooldown, in-flight, quota, requests, tokens, errors."""
        from ..provider_pools import key_table

        llmitm = ctx.master.addons.get("llmitm")
        config = getattr(llmitm, "config", None)
        if config is None:
            return ["llmitm.keys: llmitm's addon is not loaded"]
        # key_table runs its own event loop (asyncio.run): give it a thread of its own.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(key_table, config).result(timeout=KEYS_TIMEOUT)

    @command.command("llmitm.export")
    def export_command(self, flows: Sequence[mitmproxy.flow.Flow], folder: mitmproxy.types.Path) -> Sequence[str]:
        """Write flows as fixture folders for `llmitm replay` (bodies only: no header, no key)."""
        return export.export_flows(list(flows), Path(folder).expanduser())
