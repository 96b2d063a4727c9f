"""Waiting and stopping in a way that never loses a cancellation.

On Python 3.11, `asyncio.wait_for(aw, t)` returns normally when `aw` finishes in the same loop tick as
the waiting task is cancelled (CPython gh-86296, fixed in 3.12): the cancellation is lost. redis-py
wraps every command send in such a wait_for when it has a socket timeout, so on 3.11 a task cancelled
while it talks to Redis can run on as if nothing happened (redis-py #2028, #2551 are the same class of
bug). A background loop built on it then never ends, and `asyncio.Runner.close()` waits for it forever:
the test suite hung this way in the Redis store tests.

So: our own waits use `asyncio.timeout()`, which keeps an outside cancellation; the Redis store sets no
socket timeout on the client and bounds each call itself; and every loop, and acquire() after each
store call, passes a `CancelGuard`, which re-raises a cancellation that arrived but was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when it was set. Cancellation propagates."""
    try:
        async with asyncio.timeout(max(seconds, 0.001)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


class CancelGuard:
    """Notices a cancellation of the current task that some awaited code caught and dropped.

    Task.cancelling() counts the cancellations requested and not yet handled (handled: uncancel(), as
    asyncio.timeout does for its own). More than when the guard was made means one was swallowed."""

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._pending_at_start = self._task.cancelling() if self._task is not None else 0

    @property
    def lost(self) -> bool:
        return self._task is not None and self._task.cancelling() > self._pending_at_start

    def check(self) -> None:
        """Raise the cancellation again if one arrived and was lost."""
        if self.lost:
            raise asyncio.CancelledError


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended. Its own cancellation or failure is not the caller's
    concern; the caller's cancellation is: it propagates (the task, cancelled already, ends on its own)."""
    await stop_tasks({task})


async def stop_tasks(tasks: set[asyncio.Task]) -> None:
    """stop_task for several at once (`tasks` is copied: it may be a set the tasks remove themselves from)."""
    stopping = set(tasks)
    if not stopping:
        return
    for task in stopping:
        task.cancel()
    await asyncio.wait(stopping)
    for task in stopping:
        if not task.cancelled():
            task.exception()  # retrieved, so a failure of the stopped task is not reported as never retrieved


async def bounded(step: str, work: Awaitable[object], seconds: float) -> bool:
    """Await `work` for at most `seconds`; True when it finished. A step that overruns is cancelled
    and logged by name (a shutdown must end even when one step cannot), a failing one is logged; the
    caller's own cancellation propagates."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            await work
    except TimeoutError:
        if not scope.expired():
            log.exception("llmitm: %s failed", step)  # its own timeout, not ours
        else:
            log.warning("llmitm: %s did not finish within %g s; left unfinished", step, seconds)
        return False
    except Exception:
        log.exception("llmitm: %s failed", step)
        return False
    return True
