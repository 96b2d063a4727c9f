"""The reachability check for keyless providers: a reachable upstream is remembered for a while (one
extra handshake per upstream every 30 s, not per request); an unreachable one never is."""

from __future__ import annotations

import socket

from llmitm.reachability import REMEMBER_REACHABLE, Reachability


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_reachable_upstream_is_checked_once_per_interval_and_an_unreachable_one_every_time():
    clock = Clock()
    reachability = Reachability(clock)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        assert await reachability.problem(url) is None
    # The server is gone, but the success still stands until the interval ends.
    assert await reachability.problem(url) is None
    clock.now += REMEMBER_REACHABLE + 1
    problem = await reachability.problem(url)
    assert problem is not None and "cannot connect to 127.0.0.1" in problem
    assert await reachability.problem(url) is not None  # a failure is not remembered as success
