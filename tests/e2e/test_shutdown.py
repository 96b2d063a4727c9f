"""A proxy told to stop exits within a bound, whatever it is in the middle of.

`llmitm run` is stopped with SIGTERM (a service manager, tests/harness/proxy.py) or SIGINT (Ctrl-C)
while it holds everything a stop can meet: pooled streams whose upstream fell silent after the first
event (one passed through, one translated), a whole answer whose upstream never sends its headers, a
client that hung up mid-stream while its upstream stays silent, a request waiting in the pool for a
busy key, the usage ledger and pool state in SQLite, the metrics endpoint, and an OTLP collector that
accepts connections and never answers. mitmproxy runs the addons' `done` hooks before it drops any
connection, so a shutdown step that waits for one of these (the relay's loopback server draining its
streams, a trace export) used to keep the process alive for minutes, deaf to further signals.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import FakeUpstream, Received, Reply, default_script

pytestmark = pytest.mark.e2e

STOP_BOUND_SECONDS = 15  # far above a clean exit; a hang waits on the upstream's silence (minutes)
SETTLE_SECONDS = 30  # how long the scene may take to set up before the test gives up
KEYS = [f"sk-ant-shutdown-{n}-000000000000" for n in range(3)]
HEADERS = {"x-api-key": "sk-app-own-key-shutdown", "authorization": "Bearer sk-app-own-key-shutdown",
           "anthropic-version": "2023-06-01"}
ANTHROPIC = "https://api.anthropic.com/v1/messages"
OPENAI = "https://api.openai.com/v1/chat/completions"


def config(upstream_url: str, otlp_port: int, folder) -> str:
    keys = ", ".join(f'{{key: "{k}", max_concurrency: 1}}' for k in KEYS)
    return f"""
state: "sqlite:///{folder / 'state.db'}"
observe: {{metrics_port: 0, otlp_endpoint: "http://127.0.0.1:{otlp_port}/v1/traces"}}
providers:
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: [{keys}], max_wait_seconds: 60}}
routes:
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
"""


def falling_silent(release: threading.Event):
    """The upstream's script: a stream sends its first recorded event, then nothing until `release`;
    a whole answer sends nothing at all (not even headers) until `release`, then a reset."""

    def script(req: Received) -> Reply:
        reply = default_script(req)
        if reply.events is None:
            release.wait(SETTLE_SECONDS * 4)
            return Reply(reset=True)
        first = reply.events[0]

        def events() -> Iterator[bytes]:
            yield first
            release.wait(SETTLE_SECONDS * 4)  # then the stream just ends (its peer is long gone)

        return dataclasses.replace(reply, events=events())

    return script


class App:
    """One app request in its own thread: streams read until the proxy goes away, unless `hang_up`."""

    def __init__(self, proxy: ProxyProcess, url: str, stream: bool, hang_up: bool = False) -> None:
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.status: int | None = None
        self.body = b""
        body = {"model": "claude-sonnet-4-5", "max_tokens": 32, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}
        self.thread = threading.Thread(target=self._run, args=(proxy, url, body, hang_up), daemon=True)
        self.thread.start()

    def _run(self, proxy: ProxyProcess, url: str, body: dict, hang_up: bool) -> None:
        try:
            with httpx.Client(proxy=proxy.url, verify=str(proxy.ca), timeout=SETTLE_SECONDS * 4) as client:
                with client.stream("POST", url, json=body, headers=HEADERS) as r:
                    self.status = r.status_code
                    for chunk in r.iter_raw():
                        self.body += chunk
                        self.first_bytes.set()
                        if hang_up:
                            return
        except httpx.HTTPError:
            pass  # the proxy went away: expected, the test is about the proxy
        finally:
            self.ended.set()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the scene did not set up: {what}")
        time.sleep(0.05)


@pytest.fixture
def silent_collector():
    """An OTLP endpoint that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_proxy_exits_promptly_with_silent_upstreams_and_departed_clients_in_flight(
        tmp_path, silent_collector, stop_signal):
    release = threading.Event()
    with FakeUpstream() as upstream:
        upstream.script = falling_silent(release)
        proxy = ProxyProcess(tmp_path, config(upstream.url, silent_collector, tmp_path)).start()
        try:
            # Three requests take the three keys (one slot each) and are left hanging upstream.
            passed_through = App(proxy, ANTHROPIC, stream=True)
            translated = App(proxy, OPENAI, stream=True)
            hung_up = App(proxy, ANTHROPIC, stream=True, hang_up=True)
            wait_until(lambda: passed_through.first_bytes.is_set() and translated.first_bytes.is_set(),
                       "both kept streams got their first event")
            wait_until(hung_up.ended.is_set, "the hanging-up client got its first bytes and left")
            whole = App(proxy, ANTHROPIC, stream=False)
            waiting = App(proxy, ANTHROPIC, stream=True)
            # The departed client's key goes to one of the two; the other waits in the pool.
            wait_until(lambda: len(upstream.received) == 4, "a fourth request reached the upstream")
            time.sleep(0.5)  # the last one is queued for a key by now
            assert not (whole.ended.is_set() or waiting.ended.is_set())

            proxy.proc.send_signal(stop_signal)
            try:
                proxy.proc.wait(STOP_BOUND_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.fail(f"llmitm still runs {STOP_BOUND_SECONDS}s after {stop_signal.name}:\n{proxy.log()[-4000:]}")
            log = proxy.log()
            assert proxy.proc.returncode == 0, log[-4000:]
            assert llmitm_tracebacks(log) == [], log[-4000:]
            # The request still waiting (for a key, or for its whole answer) was told, in its protocol.
            assert whole.ended.wait(SETTLE_SECONDS)
            assert whole.status == 503, whole.body
            answer = json.loads(whole.body)
            assert answer["type"] == "error" and "shutting down" in answer["error"]["message"], answer
        finally:
            proxy.stop()
            release.set()


def llmitm_tracebacks(log: str) -> list[str]:
    """Tracebacks through llmitm's own code. (On Python 3.11 asyncio itself may print one for a
    mitmproxy connection cancelled at exit: asyncio/streams.py calls exception() on a cancelled task.)"""
    blocks = (block.split("\n[", 1)[0] for block in log.split("Traceback (most recent call last):")[1:])
    return [block for block in blocks if "/llmitm/" in block]
