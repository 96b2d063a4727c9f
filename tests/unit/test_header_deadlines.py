"""The header deadline's clock: which connections it watches, when it runs and when it stops (the
closing itself, through a real mitmdump, is in tests/e2e/test_header_deadline.py)."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow, tutils

from llmitm import deadlines
from llmitm.bodylimits import mitmproxy_body_size_limit
from llmitm.deadlines import HeaderDeadlines, speaks_http_first

TIMEOUT = 0.05


@pytest.fixture
def closed(monkeypatch) -> list[str]:
    """The client ids the addon closed (instead of asking a real proxyserver)."""
    ids: list[str] = []
    monkeypatch.setattr(deadlines, "close_client", lambda client_id: ids.append(client_id) or True)
    return ids


def client(mode: str = "regular"):
    conn = tflow.tclient_conn()
    conn.proxy_mode = ProxyMode.parse(mode)
    return conn


def flow_on(conn, host: str = "api.openai.com"):
    return tflow.tflow(client_conn=conn, req=tutils.treq(host=host))


def addon() -> HeaderDeadlines:
    return HeaderDeadlines(timeout=lambda: TIMEOUT, intercepts=lambda host: host == "api.openai.com")


@pytest.mark.parametrize("mode", ["regular", "upstream:http://corp:3128", "reverse:http://127.0.0.1:8000",
                                  "reverse:https://api.openai.com"])
def test_listeners_whose_clients_speak_http_first_are_watched(mode):
    assert speaks_http_first(client(mode))


@pytest.mark.parametrize("mode", ["transparent", "socks5", "reverse:tcp://127.0.0.1:22", "reverse:tls://example.com:443"])
def test_listeners_whose_clients_may_speak_anything_are_not(mode):
    assert not speaks_http_first(client(mode))


async def test_a_client_sending_no_request_head_in_time_is_closed(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [conn.id] and conn.id not in deadline.watches


async def test_the_clock_stops_while_any_request_is_open_and_runs_once_all_are_answered(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    first, second = flow_on(conn), flow_on(conn)  # two HTTP/2 streams on one connection
    deadline.requestheaders(first)
    deadline.requestheaders(second)
    deadline.response(first)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == []  # the second stream is still open
    deadline.error(second)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [conn.id]  # idle since the last answer


async def test_an_answer_to_a_request_the_clock_never_saw_does_not_start_it(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    open_request = flow_on(conn)
    deadline.requestheaders(open_request)
    deadline.response(flow_on(conn))
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == []


async def test_a_tunnel_to_an_intercepted_host_must_bring_its_request_in_time(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    connect = flow_on(conn, "api.openai.com")
    deadline.http_connect(connect)
    deadline.http_connected(connect)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [conn.id]


@pytest.mark.parametrize(("opened", "became"), [("http_connect", "http_connected"), ("requestheaders", "websocket_start")])
async def test_a_passed_through_tunnel_or_a_websocket_is_no_longer_timed(closed, opened, became):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    flow = flow_on(conn, "example.com")
    getattr(deadline, opened)(flow)
    getattr(deadline, became)(flow)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [] and deadline.watches == {}


async def test_a_refused_connect_starts_the_clock_again(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    connect = flow_on(conn, "127.0.0.1")
    deadline.http_connect(connect)
    deadline.http_connect_error(connect)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [conn.id]


async def test_a_closed_connection_leaves_no_timer(closed):
    deadline, conn = addon(), client()
    deadline.client_connected(conn)
    timer = deadline.watches[conn.id].timer
    deadline.client_disconnected(conn)
    assert timer is not None and timer.cancelled() and deadline.watches == {}
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == []


async def test_a_socks5_client_is_never_timed(closed):
    deadline, conn = addon(), client("socks5")
    deadline.client_connected(conn)
    await asyncio.sleep(TIMEOUT * 4)
    assert closed == [] and deadline.watches == {}


def test_mitmproxys_body_cap_leaves_room_above_llmitms_own_limit():
    assert mitmproxy_body_size_limit(1 << 20, 1 << 20) == 2 << 20  # chunked bodies up to here: llmitm's 413
    assert mitmproxy_body_size_limit(1 << 20, 8 << 20) == 8 << 20  # never below a buffered answer's limit
