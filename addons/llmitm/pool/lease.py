"""A key handed out for one upstream attempt; released exactly once with that attempt's result."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

ReleaseFn = Callable[["Lease | None", int | None, Mapping[str, str] | None, Any, str | None, int, int, bool], None]

log = logging.getLogger(__name__)


def _free_leaked_slot(provider: str, key_id: str, release_fn: ReleaseFn) -> None:
    log.warning("%s: a lease on key %s was dropped without release(); freeing its slot", provider, key_id)
    release_fn(None, None, None, None, None, 0, 0, False)


class Lease:
    def __init__(self, provider: str, key_id: str, secret: str, masked: str, release_fn: ReleaseFn) -> None:
        self.provider = provider
        self.key_id = key_id
        self.secret = secret
        self.masked = masked
        self._release_fn = release_fn
        self.released = False
        # A lease dropped without release() (a bug, a task cancelled at the wrong moment) would hold its
        # slot forever and shrink the key's concurrency cap; free it when the lease is garbage-collected.
        self._finalizer = weakref.finalize(self, _free_leaked_slot, provider, key_id, release_fn)

    def release(
        self,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body_json: Any = None,
        error: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        aborted: bool = False,
    ) -> None:
        """Return the key with the attempt's result.

        status: the upstream HTTP status (None when no response arrived). headers: the response headers,
        for rate-limit state. body_json: the parsed error body when there is one (Gemini's retryDelay,
        OpenAI's insufficient_quota, Anthropic's in-stream overloaded_error). error: a connection/stream
        failure text. With status and error both None the attempt counts as abandoned: only the slot is freed.
        aborted: the app disconnected before the answer was complete; the `error` that caused is not held
        against the key (its tokens and the request are still counted). An error status the upstream sent
        before (429, 401, 5xx) still counts.
        """
        if self.released:
            raise RuntimeError(f"lease on key {self.key_id!r} released twice")
        self.released = True
        self._finalizer.detach()
        self._release_fn(self, status, headers, body_json, error, input_tokens, output_tokens, aborted)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Leaving the block without an explicit release (an exception, a cancelled client) frees the slot
        # without judging the key: the exception may have nothing to do with it.
        if not self.released:
            self.release()

    def __repr__(self) -> str:
        return f"Lease({self.provider}/{self.key_id} {self.masked}{' released' if self.released else ''})"
