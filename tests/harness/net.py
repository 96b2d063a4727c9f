"""Loopback helpers shared by the tests that start servers of their own."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mitmweb_options(port: int, password: str) -> list[str]:
    """mitmweb on `port` with a known password (12's token auth; mitmproxy 11 defers the unknown option
    and the harness passes --allow-unauthenticated-web there), and no browser opened."""
    return ["--set", "web_open_browser=false", "--set", f"web_port={port}", "--set", f"web_password={password}"]
