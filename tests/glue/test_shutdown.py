"""Stopping in-process: the addon's `done` ends every task llmitm started and is bounded step by step,
a request still waiting upstream is answered that llmitm stops, the upkeep's probes end with it, and
the observer's last trace export never blocks the event loop. (tests/e2e/test_shutdown.py stops a
real `llmitm run` with signals.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time

import aiohttp
import pytest
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from llmitm import addon as addon_module
from llmitm import upkeep
from llmitm.addon import Llmitm
from llmitm.config import builtin_default
from llmitm.observe.ledger import LedgerRow, LedgerWriter
from llmitm.observe.observer import Observer
from llmitm.pool.tasks import bounded
from llmitm.provider_pools import PoolRegistry
from llmitm.relay import Relay, RelayJob
from tests.glue.conftest import config_text, make_config, pools_for
from tests.glue.test_relay import CHAT, job_for
from tests.harness.upstream import Reply, default_script

BOUND_SECONDS = 5.0  # far above what stopping takes; only here so that a regression fails instead of hanging
STEP_SECONDS = 0.05


def our_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


class Hangs:
    """A shutdown step that never finishes by itself (a relay draining a silent stream, a stuck flush)."""

    def __init__(self) -> None:
        self.cancelled = False
        self.pools: dict = {}  # what the upkeep reads, for the addon's pools

    async def close(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class Fails:
    async def close(self) -> None:
        raise OSError("disk full")


class Closes:
    def __init__(self) -> None:
        self.closed = False
        self.pools: dict = {}

    async def close(self) -> None:
        self.closed = True


async def test_done_cuts_short_a_step_that_hangs_names_it_and_still_runs_the_rest(monkeypatch, caplog):
    monkeypatch.setattr(addon_module, "SHUTDOWN_STEP_SECONDS", STEP_SECONDS)
    addon = Llmitm()
    addon.relay, addon.observer, addon.pools = Hangs(), Fails(), Closes()
    addon.running()  # the upkeep task
    upkeep_task = addon._upkeep
    with caplog.at_level(logging.WARNING):
        async with asyncio.timeout(BOUND_SECONDS):
            await addon.done()
    assert addon.relay.cancelled and addon.pools.closed and upkeep_task.done()
    assert "closing the relay (its loopback server and upstream connections) did not finish" in caplog.text
    assert "closing the observer (ledger rows, traces, metrics port) failed" in caplog.text
    assert our_tasks() == set()


@pytest.fixture
async def stalled_upstream(upstream):
    """The upstream accepts the request and sends nothing (no headers) until released."""
    release = threading.Event()
    upstream.script = lambda req: (release.wait(BOUND_SECONDS * 2), Reply(reset=True))[1]
    yield upstream
    release.set()


@pytest.fixture
async def silent_stream_upstream(upstream):
    """A stream's first recorded event, then silence until released."""
    release = threading.Event()

    def script(req):
        reply = default_script(req)
        first = reply.events[0]

        def events():
            yield first
            release.wait(BOUND_SECONDS * 2)

        return dataclasses.replace(reply, events=events())

    upstream.script = script
    yield upstream
    release.set()


async def relayed_stream(relay: Relay, upstream) -> tuple[RelayJob, aiohttp.ClientSession, aiohttp.ClientResponse]:
    """A pooled stream through the relay, as mitmproxy sends it, with its first bytes read."""
    body = {**CHAT, "stream": True}
    job = job_for(upstream, body)
    session = aiohttp.ClientSession()
    response = await session.post(await relay.submit(job), json=body)
    await response.content.readany()
    return job, session, response


async def test_a_relayed_stream_ends_as_soon_as_its_app_leaves_though_the_upstream_is_silent(silent_stream_upstream):
    relay = Relay()
    try:
        job, session, response = await relayed_stream(relay, silent_stream_upstream)
        response.close()  # mitmproxy drops the relay connection when the app hangs up
        await session.close()
        async with asyncio.timeout(BOUND_SECONDS):  # not the upstream's next event, nor idle_timeout_seconds
            while job.tries[-1].end is None:
                await asyncio.sleep(0.01)
    finally:
        await relay.close()


async def test_closing_the_relay_ends_a_stream_whose_upstream_is_silent(silent_stream_upstream):
    relay = Relay()
    job, session, response = await relayed_stream(relay, silent_stream_upstream)
    try:
        async with asyncio.timeout(BOUND_SECONDS):  # aiohttp's default waited 60 s, twice
            await relay.close()
        assert job.tries[-1].end is not None
    finally:
        response.close()
        await session.close()


async def test_a_request_waiting_for_its_whole_answer_is_told_llmitm_stops_and_frees_its_key(tmp_path, stalled_upstream,
                                                                                               caplog):
    path = tmp_path / "llmitm.yaml"
    path.write_text(config_text(stalled_upstream.url))
    addon = Llmitm()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, llmitm_config=str(path))
        pool = addon.pools.get("openai")
        flow = tflow.tflow(req=http.Request.make(
            "POST", "https://api.openai.com/v1/chat/completions",
            json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            {"content-type": "application/json", "authorization": "Bearer sk-app-own-key-123456789"}), live=True)
        hook = asyncio.create_task(addon.request(flow))
        async with asyncio.timeout(BOUND_SECONDS):
            while not stalled_upstream.received:
                await asyncio.sleep(0.01)
            await addon.done()
            await hook
    assert flow.response is not None and flow.response.status_code == 503
    error = json.loads(flow.response.content)["error"]
    assert "shutting down" in error["message"] and error["type"]  # OpenAI's error shape
    assert [s.in_flight for s in pool.snapshot()] == [0, 0]
    assert "dropped without release" not in caplog.text  # freed by the cancelled attempt, not a finalizer
    assert addon.exchanges == {}


async def test_cancelling_the_upkeep_ends_the_key_probes_it_started(stalled_upstream):
    config = make_config(stalled_upstream.url)

    class Addon:  # what upkeep.run reads (upkeep.Upkept)
        watcher = None

        def __init__(self) -> None:
            self.config, self.pools, self.relay = config, pools_for(config), Relay()

    addon = Addon()
    pool = addon.pools.get("openai")
    (await pool.acquire()).release(status=401)  # disabled: the upkeep probes it (probe_interval 0.01 s)
    running = asyncio.create_task(upkeep.run(addon))
    try:
        async with asyncio.timeout(BOUND_SECONDS):
            while not stalled_upstream.received:  # the probe is in flight, the upstream silent
                await asyncio.sleep(0.01)
            assert any(t.get_name().startswith("probe:openai:") for t in our_tasks())
            running.cancel()
            await asyncio.wait({running})
        assert running.cancelled()
        assert not any(t.get_name().startswith("probe:") for t in our_tasks())
    finally:
        await addon.relay.close()
        await addon.pools.close()


class StuckExporter:
    """A tracer whose shutdown blocks (OpenTelemetry waiting on a collector that never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def close(self) -> None:
        self.release.wait(BOUND_SECONDS * 2)


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: list = []

    def append(self, rows) -> None:
        self.rows.extend(rows)

    def close(self) -> None:
        pass


async def test_the_observer_writes_its_ledger_and_never_blocks_the_loop_on_a_stuck_trace_export():
    observer = Observer.for_config(builtin_default(), PoolRegistry(), None)
    observer.tracer, store = StuckExporter(), MemoryLedger()
    observer.ledger = LedgerWriter(store, interval=60)
    observer.ledger.record(LedgerRow(at=time.time(), client="app", route="#0", provider="openai", model="gpt-4o",
                                     key="openai#1", status=200))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        started = time.monotonic()
        finished = await bounded("closing the observer", observer.close(), 0.3)
        assert not finished and len(store.rows) == 1  # the rows first, then the traces (cut short)
        assert ticks >= 5, f"the loop ran {ticks} ticks in {time.monotonic() - started:.2f} s"
    finally:
        ticker.cancel()
        observer.tracer.release.set()


async def test_a_bounded_step_keeps_its_callers_cancellation():
    async def step() -> None:
        await asyncio.sleep(BOUND_SECONDS * 2)

    caller = asyncio.create_task(bounded("a step", step(), BOUND_SECONDS * 2))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.wait({caller}, timeout=BOUND_SECONDS)
    assert caller.cancelled()
