"""`llmitm replay DIR`: does llmitm still give the app what it gave when the flow was captured?

A fixture folder (`llmitm.export`, export.py) holds the app's request, the upstream's raw answer and
what the app received. The replay starts a loopback upstream that serves the recorded answer (status,
content type, body with its stream framing), a real llmitm (`llmitm run`, a mitmdump subprocess) whose
only route sends the recorded host to that upstream in the recorded protocol and model, through a
base-URL listener (`--reverse HOST=PORT`: no CA needed), and sends the recorded app request.

The app-facing result is compared as the app would read it: the status, then both bodies parsed in
the app's protocol and rendered as transcripts (inspect/transcript.py), so ids and timestamps a
translation makes up anew do not count, while every text, tool call, stop reason, usage figure and the
stream's event order do. Exit 0: the same; 1: different (a unified diff of the transcripts); 2: the
folder cannot be replayed.
"""

from __future__ import annotations

import difflib
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .export import EXCHANGE_FILE
from .view import render_body

START_TIMEOUT = 60.0  # seconds for llmitm to start listening
REQUEST_TIMEOUT = 60.0
REPLAY_KEY = "sk-llmitm-replay-placeholder"  # the loopback upstream takes any key; never a real one


class ReplayError(Exception):
    """The fixture folder cannot be replayed (what is missing or wrong is in the message)."""


@dataclass
class Fixture:
    folder: Path
    exchange: dict
    bodies: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Fixture:
        try:
            exchange = json.loads((folder / EXCHANGE_FILE).read_text())
            bodies = {name: (folder / spec["file"]).read_bytes() for name, spec in exchange["bodies"].items()}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReplayError(f"{folder}: not a fixture folder written by llmitm.export ({e})") from None
        for needed in ("app_request", "upstream_response", "app_response"):
            if needed not in bodies:
                raise ReplayError(f"{folder}: the fixture has no {needed.replace('_', ' ')}")
        return cls(folder, exchange, bodies)

    def spec(self, name: str) -> dict:
        return self.exchange["bodies"][name]

    @property
    def route(self) -> dict:
        return self.exchange["route"]


@dataclass
class Outcome:
    status: int
    content_type: str
    body: bytes
    upstream_paths: list[str]


class RecordedUpstream:
    """A loopback HTTP server answering every POST with the recorded upstream response."""

    def __init__(self, fixture: Fixture) -> None:
        spec, body, paths = fixture.spec("upstream_response"), fixture.bodies["upstream_response"], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("content-length") or 0))
                paths.append(self.path.split("?")[0])
                self.send_response(spec.get("status") or 200)
                self.send_header("content-type", spec.get("content_type") or "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.paths = paths
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RecordedUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_for(fixture: Fixture, upstream_url: str) -> str:
    """A config with one pooled provider (the recorded upstream) and one route for the recorded host."""
    route = fixture.route
    model = route.get("upstream_model") or route.get("model")
    provider = {"protocol": route["upstream_protocol"], "base_url": upstream_url, "keys": [REPLAY_KEY],
                "max_wait_seconds": 0}
    routing = {"match": {"host": route["app_host"]}, "provider": "replay"}
    if model:
        routing["model"] = model
    return json.dumps({"state": "memory", "providers": {"replay": provider}, "routes": [routing]})  # JSON is YAML


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_llmitm(fixture: Fixture, workdir: Path) -> Outcome:
    with RecordedUpstream(fixture) as upstream:
        config = workdir / "llmitm.yaml"
        config.write_text(config_for(fixture, upstream.url))
        port = free_port()
        cmd = [sys.executable, "-m", "llmitm.cli", "run", "--listen-port", "0", "--confdir", str(workdir / "conf"),
               "-c", str(config), "--reverse", f"{fixture.route['app_host']}={port}"]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        addons = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = addons + os.pathsep + env.get("PYTHONPATH", "")
        log = workdir / "llmitm.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        try:
            wait_listening(proc, port, log)
            outcome = send_app_request(fixture, port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        outcome.upstream_paths = list(upstream.paths)
        return outcome


def wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ReplayError(f"llmitm exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ReplayError(f"llmitm did not listen on port {port} within {START_TIMEOUT:.0f}s")


def send_app_request(fixture: Fixture, port: int) -> Outcome:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("POST", fixture.exchange["app_path"], fixture.bodies["app_request"],
                           {"content-type": "application/json", "host": fixture.route["app_host"]})
        response = connection.getresponse()
        return Outcome(response.status, response.getheader("content-type") or "", response.read(), [])
    finally:
        connection.close()


def app_view(protocol: str, status: int, content_type: str, body: bytes) -> list[str]:
    """The app's answer as the app reads it: status and the transcript (no ids made up anew)."""
    kind = content_type.split(";")[0].strip().lower() or None
    text = render_body(protocol, body, status=status, content_type=kind).text()
    return [f"status {status}"] + [line for line in text.splitlines() if not line.startswith("id: ")]


def compare(fixture: Fixture, outcome: Outcome) -> list[str]:
    """The differences as a readable unified diff; empty when the app would see the same."""
    protocol = fixture.route["client_protocol"]
    spec = fixture.spec("app_response")
    recorded = app_view(protocol, spec.get("status") or 0, spec.get("content_type") or "", fixture.bodies["app_response"])
    replayed = app_view(protocol, outcome.status, outcome.content_type, outcome.body)
    diff = list(difflib.unified_diff(recorded, replayed, "recorded (what the app received)",
                                     "replayed (what llmitm gives it now)", lineterm=""))
    expected_path = fixture.exchange.get("upstream_path")
    if expected_path and outcome.upstream_paths and outcome.upstream_paths != [expected_path]:
        diff.append(f"upstream path: recorded {expected_path}, now {', '.join(outcome.upstream_paths)}")
    return diff


def replay_folder(folder: Path) -> tuple[bool, list[str]]:
    fixture = Fixture.load(folder)
    with tempfile.TemporaryDirectory(prefix="llmitm-replay-") as tmp:
        outcome = run_llmitm(fixture, Path(tmp))
    diff = compare(fixture, outcome)
    return not diff, diff


def fixture_folders(root: Path) -> list[Path]:
    """`root` itself when it is a fixture, else every fixture folder directly inside it."""
    if (root / EXCHANGE_FILE).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if (p / EXCHANGE_FILE).is_file()) if root.is_dir() else []


def main(root: str) -> int:
    folders = fixture_folders(Path(root))
    if not folders:
        print(f"llmitm replay: no fixture folder (with {EXCHANGE_FILE}) at {root}", file=sys.stderr)
        return 2
    worst = 0
    for folder in folders:
        try:
            same, diff = replay_folder(folder)
        except ReplayError as e:
            print(f"{folder}: cannot replay: {e}", file=sys.stderr)
            worst = 2
            continue
        print(f"{folder}: {'same' if same else 'DIFFERENT'}")
        for line in diff:
            print("    " + line)
        worst = max(worst, 0 if same else 1)
    return worst
