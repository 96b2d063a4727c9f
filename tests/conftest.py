"""Suite-wide test setup: import paths, and what a hung test prints before it is failed.

The per-test time limit itself is configuration ([tool.pytest.ini_options] `timeout` in
pyproject.toml, enforced by pytest-timeout). pytest-timeout prints the stack of every thread, but a
hang in this suite is nearly always an asyncio task waiting on something that never comes (a
stream that is never closed, a task that swallows its cancellation so the loop's teardown waits for
it forever), and a thread dump shows only the event loop sitting in `select()`. So on a timeout we
also print every pending task of every live event loop, with its whole await chain.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import sys
import types
from pathlib import Path

import pytest

# Tests import the package from the source tree even when it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _await_chain(awaitable: object) -> list[str]:
    """Where a suspended coroutine is stuck: one line per frame down its `await` chain, outermost
    first (Task.get_stack() shows only the outermost frame of a suspended task)."""
    lines: list[str] = []
    seen = 0
    while awaitable is not None and seen < 100:  # bounded: a chain is never that deep
        seen += 1
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) \
            or getattr(awaitable, "ag_frame", None)
        if frame is None:  # a Future (or a finished coroutine): the end of the chain
            break
        code = frame.f_code
        source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n    {source}')
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None) \
            or getattr(awaitable, "ag_await", None)
    return lines


def _live_event_loops() -> list[asyncio.AbstractEventLoop]:
    """Every event loop that is not closed. Found through the garbage collector because the loop of a
    hung test may belong to another thread, or to a pytest-asyncio runner we hold no reference to."""
    return [obj for obj in gc.get_objects()
            if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_closed()]


def format_pending_tasks() -> str:
    """The pending tasks of every live event loop, each with the await chain it is suspended in."""
    out: list[str] = []
    for loop in _live_event_loops():
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        except RuntimeError:  # the task set changed under us (another thread): best effort
            continue
        if not tasks:
            continue
        state = "running" if loop.is_running() else "not running"
        out.append(f"event loop {loop!r} ({state}): {len(tasks)} pending task(s)")
        for task in tasks:
            out.append(f"- task {task.get_name()!r}: {task.get_coro()!r}")
            coro = task.get_coro()
            out.extend(_await_chain(coro) if isinstance(coro, types.CoroutineType | types.GeneratorType)
                       else [f"    (not a coroutine: {coro!r})"])
    return "\n".join(out) if out else "no pending asyncio tasks"


def pytest_configure(config: pytest.Config) -> None:
    # pytest-timeout has no hook for "a test timed out"; both of its methods call the module-level
    # dump_stacks(terminal) just before failing the test, so that is where the task dump goes.
    timeout_plugin = config.pluginmanager.get_plugin("timeout")
    if timeout_plugin is None or getattr(timeout_plugin.dump_stacks, "with_asyncio_tasks", False):
        return
    dump_thread_stacks = timeout_plugin.dump_stacks

    def dump_stacks(terminal) -> None:
        dump_thread_stacks(terminal)
        terminal.sep("~", title="Pending asyncio tasks")
        try:
            terminal.write(format_pending_tasks() + "\n")
        except Exception as e:  # noqa: BLE001 - a diagnostic must never hide the timeout itself
            terminal.write(f"(could not list asyncio tasks: {type(e).__name__}: {e})\n")

    dump_stacks.with_asyncio_tasks = True  # type: ignore[attr-defined]
    timeout_plugin.dump_stacks = dump_stacks
