"""The processes a benchmark run measures, started on loopback only: the replay upstream, a bare mitmdump
(and one that streams SSE), llmitm from the working tree and the LiteLLM proxy.

Each is a `Proc`: its command line, port and log file, started in a session of its own (so stopping it
reaches only what it started), ready once it listens (and, for mitmproxy, has written its CA), and
`na` with the reason when it cannot be measured. Configurations of llmitm and LiteLLM route the same
two client hosts to the replay upstream. CPU and memory of a running process: procstat.py.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
OPENAI_HOST, ANTHROPIC_HOST = "api.openai.com", "api.anthropic.com"
LITELLM_MASTER = "sk-bench-" + secrets.token_hex(24)  # LiteLLM refuses to start without one
MITM_QUIET = ["--set", "flow_detail=0", "--set", "termlog_verbosity=warn"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # never chain to a real proxy
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env.update(extra)
    return env


@dataclass
class Proc:
    """One process under test: how to start it, where it listens and logs, and what it used so far."""

    name: str
    cmd: list[str]
    port: int
    env: dict[str, str]
    logfile: Path
    ready_file: Path | None = None
    popen: subprocess.Popen | None = None
    na: str | None = None  # reason this proxy cannot be measured
    rss_start: float | None = None
    requests_since_start: int = 0

    def start(self) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.logfile, "wb")
        self.popen = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                      cwd=str(ROOT), start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                self.na = f"exited with {self.popen.returncode if self.popen else '?'}: {self.tail()}"
                return False
            if self.ready_file is None or self.ready_file.exists():
                try:
                    with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                        return True
                except OSError:
                    pass
            time.sleep(0.1)
        self.na = f"not listening on {LOOPBACK}:{self.port} after {timeout:.0f}s: {self.tail()}"
        return False

    def tail(self, n: int = 400) -> str:
        try:
            text = self.logfile.read_text(errors="replace").strip()
        except OSError:
            return ""
        return " | ".join(text[-n:].splitlines()[-4:])

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: only what we started
            self.popen.wait(5)


def llmitm_config(up: int, state: str | None, observe: dict | None = None) -> str:
    base = f"http://{LOOPBACK}:{up}"
    cfg = {
        "providers": {
            "up-openai": {"protocol": "openai-chat", "base_url": base, "keys": ["sk-bench-1", "sk-bench-2"]},
            "up-anthropic": {"protocol": "anthropic", "base_url": base, "keys": ["sk-ant-bench-1"]},
            # no keys: the app's own credential is forwarded (mitmproxy makes the upstream call, no key pool)
            "up-openai-nopool": {"protocol": "openai-chat", "base_url": base},
        },
        "routes": [
            # diagnostic: routing/rewriting only, without the key pool and its relay.
            {"match": {"host": OPENAI_HOST, "model": "nopool-*"}, "provider": "up-openai-nopool"},
            # openai-chat client -> anthropic upstream (translated non-stream): picked by model name.
            {"match": {"host": OPENAI_HOST, "model": "claude-*"}, "provider": "up-anthropic"},
            # same-protocol key swap.
            {"match": {"host": OPENAI_HOST}, "provider": "up-openai"},
            # anthropic client -> openai-chat upstream (translated stream).
            {"match": {"host": ANTHROPIC_HOST, "path": "/v1/messages"}, "provider": "up-openai"},
        ],
    }
    if state:
        cfg["state"] = state
    if observe is not None:
        cfg["observe"] = observe
    return json.dumps(cfg, indent=2)  # JSON is YAML


# What the two llmitm processes differ in: usage ledger, metrics endpoint and overhead header on (the
# default, plus a metrics port) or all off, so the key-swap rows show what observing costs.
OBSERVE_ON = {"ledger": True, "metrics_port": 0, "overhead_header": True}
OBSERVE_OFF = {"ledger": False, "overhead_header": False}


def litellm_config(up: int) -> str:
    base = f"http://{LOOPBACK}:{up}"
    cfg = {
        "model_list": [
            {"model_name": "bench-claude",
             "litellm_params": {"model": "anthropic/claude-3-7-sonnet-20250219", "api_base": base,
                                "api_key": "sk-ant-bench-1"}},
            {"model_name": "bench-gpt",
             "litellm_params": {"model": "openai/gpt-4o", "api_base": base + "/v1", "api_key": "sk-bench-1"}},
        ],
        "litellm_settings": {"drop_params": True, "telemetry": False, "set_verbose": False,
                             "json_logs": False, "request_timeout": 30,
                             # anthropic client -> openai-chat upstream, as llmitm does (default: Responses API)
                             "use_chat_completions_url_for_anthropic_messages": True},
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
    }
    return json.dumps(cfg, indent=2)


def find_tool(name: str, python: str) -> str | None:
    cand = Path(python).parent / name
    if cand.exists():
        return str(cand)
    return shutil.which(name)


def start_upstream(args: argparse.Namespace, run_dir: Path) -> Proc:
    """The replay upstream (upstream.py), started; it picks a free port and writes it to a file."""
    py = args.python
    up_port_file = run_dir / "upstream.port"
    upstream = Proc("upstream", [py, "-m", "bench_lib.upstream", "--port", "0", "--port-file", str(up_port_file),
                                  "--events-per-write", str(args.events_per_write),
                                  "--event-gap-ms", str(args.event_gap_ms)],
                    0, child_env(PYTHONPATH=str(ROOT / "scripts")), run_dir / "upstream.log")
    upstream.start()
    for _ in range(100):
        if up_port_file.exists():
            break
        time.sleep(0.05)
    upstream.port = int(up_port_file.read_text())
    up = upstream.port
    log(f"replay upstream on {LOOPBACK}:{up}")
    return upstream


def proxies(args: argparse.Namespace, run_dir: Path, up: int) -> dict[str, Proc]:
    """Every proxy under test, configured for the upstream on port `up`, not yet started."""
    py = args.python
    procs_: dict[str, Proc] = {}
    mitmdump = find_tool("mitmdump", py)
    for name, extra in (("bare", []), ("bare-stream", ["-s", str(Path(__file__).with_name("sse_stream_addon.py"))])):
        port, conf = free_port(), run_dir / f"conf-{name}"
        cmd = [mitmdump or "mitmdump", "--listen-host", LOOPBACK, "-p", str(port), "--set", f"confdir={conf}",
               "--set", "connection_strategy=lazy",
               "--map-remote", rf"|https://api\.openai\.com|http://{LOOPBACK}:{up}",
               "--map-remote", rf"|https://api\.anthropic\.com|http://{LOOPBACK}:{up}",
               *MITM_QUIET, *extra]
        procs_[name] = Proc(name, cmd, port, child_env(), run_dir / f"{name}.log",
                            ready_file=conf / "mitmproxy-ca-cert.pem")
        if not mitmdump:
            procs_[name].na = "mitmdump not found (pass --python of a venv with mitmproxy)"

    # llmitm: always the working tree's code (PYTHONPATH=addons), through its CLI. Two processes: the
    # default one observes (ledger, metrics, overhead header), "llmitm-quiet" does not.
    addons = ROOT / "addons"
    for name, observe in (("llmitm", OBSERVE_ON), ("llmitm-quiet", OBSERVE_OFF)):
        port, conf = free_port(), run_dir / f"conf-{name}"
        cfg = run_dir / f"{name}.yaml"
        cfg.write_text(llmitm_config(up, args.llmitm_state, observe))
        cmd = [py, "-c", "import sys; from llmitm.cli import main; sys.exit(main())", "run", "-c", str(cfg),
               "--listen-host", LOOPBACK, "--listen-port", str(port), "--confdir", str(conf), "--", *MITM_QUIET]
        procs_[name] = Proc(name, cmd, port, child_env(PYTHONPATH=str(addons)), run_dir / f"{name}.log",
                            ready_file=conf / "mitmproxy-ca-cert.pem")

    port = free_port()
    lcfg = run_dir / "litellm.yaml"
    lcfg.write_text(litellm_config(up))
    litellm = args.litellm
    procs_["litellm"] = Proc("litellm", [litellm or "litellm", "--config", str(lcfg), "--host", LOOPBACK,
                                         "--port", str(port), "--num_workers", "1"],
                             port, child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR",
                                             LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="True",
                                             LITELLM_MASTER_KEY=LITELLM_MASTER,
                                             LITELLM_MODE="PRODUCTION"),
                             run_dir / "litellm.log")
    if not litellm:
        procs_["litellm"].na = "LiteLLM not installed (run without --no-litellm, or pass --litellm PATH)"
    elif args.no_litellm:
        procs_["litellm"].na = "skipped (--no-litellm)"
    return procs_
