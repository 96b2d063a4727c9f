"""One robustness run: llmitm + fake upstream + sentinel, and the tallies every script prints."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.harness.proxy import ProxyProcess  # noqa: E402
from tests.harness.upstream import FakeUpstream, Reply, default_script  # noqa: E402,F401

PLACEHOLDER = "sk-app-own-key-robustness-0000"
COOLDOWN_MAX = 1.0
POOLED = {"claude": "sk-ant-pool-robust-0001", "compat": "sk-pool-compat-robust-0001", "gemini": "AIza-pool-robust-0001"}


def config(upstream_url: str) -> str:
    # Short cooldowns: each fault scenario starts with rested keys (faults.py waits COOLDOWN_MAX between them).
    pool = f"max_wait_seconds: 2, cooldown: {{default_seconds: 0.2, breaker_seconds: 0.2, max_seconds: {COOLDOWN_MAX}}}"
    return f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["{POOLED['claude']}", "{POOLED['claude']}-2"], {pool}}}
  compat: {{protocol: openai-chat, base_url: "{upstream_url}/v1", keys: ["{POOLED['compat']}", "{POOLED['compat']}-2"], {pool}}}
  gemini: {{protocol: gemini, base_url: "{upstream_url}", keys: ["{POOLED['gemini']}", "{POOLED['gemini']}-2"], {pool}}}
routes:
  - {{match: {{host: api.openai.com, model: "same-*"}}, provider: compat, model: gpt-4o-mini}}
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: api.anthropic.com}}, provider: compat, model: gpt-4o-mini}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: claude, model: claude-sonnet-4-5}}
"""


def error_shape_ok(protocol: str, status: int, body: bytes) -> bool:
    """Whether an error answer is in the shape the app's SDK parses."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return False
    error = payload["error"]
    if protocol == "anthropic":
        return payload.get("type") == "error" and isinstance(error.get("type"), str) and isinstance(error.get("message"), str)
    if protocol == "gemini":
        return error.get("code") == status and isinstance(error.get("message"), str) and isinstance(error.get("status"), str)
    return isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    bad_error_shape: list[str] = field(default_factory=list)
    transport_failures: list[str] = field(default_factory=list)

    def answer(self, label: str, protocol: str, status: int, body: bytes, content_type: str) -> None:
        self.statuses[status] += 1
        if status >= 400 and "json" in content_type and not error_shape_ok(protocol, status, body):
            self.bad_error_shape.append(f"{label}: {status} {body[:160]!r}")
        elif status >= 400 and "json" not in content_type:
            self.bad_error_shape.append(f"{label}: {status} ({content_type or 'no content-type'}) {body[:160]!r}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Run:
    """Context manager: upstream, llmitm with the sentinel, and the report."""

    def __init__(self, name: str, make_config: Callable[[str, Path], str] = lambda url, tmp: config(url)) -> None:
        self.name = name
        self.make_config = make_config  # (upstream URL, the run's folder) -> llmitm's YAML
        self.tmp = Path(tempfile.mkdtemp(prefix=f"llmitm-{name}-"))
        self.sentinel = self.tmp / "sentinel.txt"
        self.tally = Tally()

    def __enter__(self) -> Run:
        self.upstream = FakeUpstream().__enter__()
        self.sentinel.write_text("")
        extra = ["-s", str(Path(__file__).with_name("sentinel_addon.py")), "--set", "flow_detail=0"]
        self.proxy = ProxyProcess(self.tmp, self.make_config(self.upstream.url, self.tmp), extra=extra,
                                  env={"LLMITM_SENTINEL_FILE": str(self.sentinel)}).start()
        self.rss_before = rss_kib(self.proxy.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_after = rss_kib(self.proxy.proc.pid)
        self.proxy.stop()
        self.upstream.__exit__(None, None, None)

    def report(self) -> dict:
        log = self.proxy.log()
        own_key = sum(1 for r in self.upstream.received if r.key == PLACEHOLDER)
        unrouted = [line for line in self.sentinel.read_text().splitlines() if line]
        report = {
            "answers_by_status": {str(k): v for k, v in sorted(self.tally.statuses.items(), key=lambda kv: str(kv[0]))},
            "answers_not_in_protocol_error_shape": len(self.tally.bad_error_shape),
            "tracebacks_in_log": len(re.findall(r"Traceback \(most recent call last\)", log)),
            "requests_unrouted": len(unrouted),
            "requests_with_the_apps_own_key": own_key,
            "upstream_requests": len(self.upstream.received),
            "transport_failures": len(self.tally.transport_failures),
            "rss_kib_before": self.rss_before,
            "rss_kib_after": self.rss_after,
        }
        examples = self.tally.bad_error_shape[:5] + self.tally.transport_failures[:5] + unrouted[:5]
        if examples:
            report["examples"] = examples
        if report["tracebacks_in_log"]:
            report["first_traceback"] = log[log.index("Traceback"):][:2000]
        return report


def print_report(report: dict) -> None:
    print(json.dumps(report, indent=1))


def must_be_zero(report: dict) -> list[str]:
    keys = ("answers_not_in_protocol_error_shape", "tracebacks_in_log", "requests_unrouted", "requests_with_the_apps_own_key")
    return [f"{k} = {report[k]}" for k in keys if report[k]]


os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.gettempdir() + "/llmitm-hypothesis")
