"""A mitmproxy script the keyless tests load beside llmitm: the known AI hosts resolve to a closed
port on 127.0.0.1.

With no config llmitm sends the known AI hosts' traffic to the real providers, which tests must not
reach (no packet may leave this machine, not even a DNS query). Loaded into the proxy process, this
makes every name llmitm intercepts by default resolve to a loopback port that is bound but never
listened on, so a connection there is refused: an upstream that cannot be reached, deterministically.
"""

from __future__ import annotations

import socket

from llmitm.config import KNOWN_AI_HOSTS

_getaddrinfo = socket.getaddrinfo
_closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # held for the process's life: no one else gets the port
_closed.bind(("127.0.0.1", 0))
CLOSED_PORT = _closed.getsockname()[1]


def _closed_port_for_ai_hosts(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.lower().rstrip(".") in KNOWN_AI_HOSTS:
        return _getaddrinfo("127.0.0.1", CLOSED_PORT, *args, **kwargs)
    return _getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _closed_port_for_ai_hosts
