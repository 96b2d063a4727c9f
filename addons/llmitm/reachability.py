"""Can mitmproxy reach a keyless provider? Asked before the flow goes out, so that an unreachable one
is answered in the app's protocol instead of with mitmproxy's HTML page.

For a provider without keys (no config at all: the known AI hosts with the app's own key; a local
model server) mitmproxy dials the upstream itself. When that fails, mitmproxy answers the app with its
own HTML 502 page right after the `error` hook, and no hook can replace it: `handle_protocol_error`
(proxy/layers/http/__init__.py) sends a `ResponseProtocolError`, which the HTTP/1 and HTTP/2 server
layers render with `make_error_response` whatever the flow holds (mitmproxy 11.0.2 and 12.x source).
An SDK that expects JSON then fails on HTML it cannot parse, with no word of what happened.

So before such a flow goes out, llmitm opens (and closes) one TCP connection to the upstream itself;
a failure is answered as a 502 in the app's protocol naming the provider and the error. A success is
remembered for `REMEMBER_REACHABLE` seconds, so a busy app pays one extra handshake per upstream every
30 s, never one per request; a failure is never remembered, so the next request tries again. A server
that goes away between the check and mitmproxy's own connection still gets mitmproxy's page.
(Pooled providers never need this: llmitm's relay makes their calls and answers failures itself.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

REMEMBER_REACHABLE = 30.0  # seconds a successful check stands for
CONNECT_TIMEOUT = 10.0


class Reachability:
    """Checks upstream addresses, remembering the reachable ones for a while (one entry per upstream
    address in the config: bounded by it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._reachable_until: dict[tuple[str, int], float] = {}

    async def problem(self, url: str) -> str | None:
        """None if `url`'s host accepts a connection; else what went wrong, for the app."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        now = self._clock()
        if self._reachable_until.get((host, port), 0.0) > now:
            return None
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except OSError as e:  # TimeoutError (wait_for, Python 3.11+) is one too
            return f"cannot connect to {host}:{port} ({e.strerror or type(e).__name__})"
        writer.close()
        self._reachable_until[(host, port)] = now + REMEMBER_REACHABLE
        return None
