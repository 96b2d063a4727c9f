"""scripts/soak: many mixed requests at once through a real llmitm, with faults, and an audit after.

The mix: the four app protocols, streamed and not, each both translated and passed through in its own
protocol; concurrency `--concurrency`; the first upstream attempt of some requests meets a 429, a 529
or a connection reset; some streaming clients hang up after the first bytes. Every request carries
a marker (`soak-000123`) in its prompt, which the fake upstream reads back from what reached it, so
the audit can tell per request what happened:

- lost: a request the app got no HTTP answer for, or a 200 whose body is not a whole answer;
- duplicated: a request the upstream answered successfully more than once (a retry after success);
- after the run, from the state store: every key's in-flight count is back to 0 (no leaked
  concurrency slot) and no key is disabled (a client hanging up is never the key's fault).

`scripts/soak --requests 10000 --concurrency 32` is the full size; CI runs a small one
(tests/e2e/test_soak.py). Loopback only; the load is bounded by --requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from .harness import COOLDOWN_MAX, PLACEHOLDER, REPO, Reply, Run, default_script, must_be_zero, print_report

MARKER = re.compile(rb"soak-(\d{6})")
HEADERS = {"authorization": f"Bearer {PLACEHOLDER}", "x-api-key": PLACEHOLDER, "x-goog-api-key": PLACEHOLDER,
           "anthropic-version": "2023-06-01"}
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models"
# How a request's first upstream attempt fails, by request number modulo FAULT_EVERY.
FAULT_EVERY = 25
FIRST_ATTEMPT_FAULTS = {
    0: lambda req: Reply.json(429, {"error": {"message": "Rate limit reached", "type": "requests",
                                              "code": "rate_limit_exceeded"}}),
    1: lambda req: Reply.json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    2: lambda req: Reply(reset=True),
}
ABORT_EVERY = 9  # every ninth streaming request is abandoned by its client after the first bytes
EXPECTED = {200, 429, 502, 503, 529}  # what an app may be answered here (pool exhausted, faults)


def soak_config(upstream_url: str, folder: Path) -> str:
    pool = f"max_wait_seconds: 2, cooldown: {{default_seconds: 0.2, breaker_seconds: 0.2, max_seconds: {COOLDOWN_MAX}}}"
    keys = lambda name: json.dumps([f"sk-soak-{name}-{i:04d}-0000000" for i in range(3)])  # noqa: E731
    return f"""
state: "sqlite:///{folder / 'state.db'}"
providers:
  openai: {{protocol: [openai-chat, openai-responses], base_url: "{upstream_url}/v1", keys: {keys("openai")}, {pool}}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: {keys("claude")}, {pool}}}
  gemini: {{protocol: gemini, base_url: "{upstream_url}", keys: {keys("gemini")}, {pool}}}
routes:
  - {{match: {{host: api.openai.com, model: "same-*"}}, provider: openai, model: gpt-4o-mini}}
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: api.anthropic.com, model: "same-*"}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: api.anthropic.com}}, provider: gemini, model: gemini-2.5-flash}}
  - {{match: {{host: generativelanguage.googleapis.com, model: "same-*"}}, provider: gemini, model: gemini-2.5-flash}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: openai, model: gpt-4o-mini}}
"""


@dataclass(frozen=True)
class Call:
    number: int
    protocol: str
    url: str
    body: dict
    stream: bool
    aborts: bool  # the client hangs up after the first bytes

    @property
    def label(self) -> str:
        how = "same" if "same-" in json.dumps(self.body) + self.url else "xlate"
        return f"{self.protocol}{'-stream' if self.stream else ''}-{how}"


def make_call(number: int) -> Call:
    """Request `number` of the mix: protocol, streaming and passthrough vary fastest, so every small
    run covers all sixteen kinds."""
    protocol = ("openai-chat", "openai-responses", "anthropic", "gemini")[number % 4]
    stream = bool(number // 4 % 2)
    model = "same-model" if number // 8 % 2 else "other-model"
    text = f"hi soak-{number:06d}"
    if protocol == "gemini":
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url, body = f"{GEMINI}/{model}:{verb}", {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    elif protocol == "openai-responses":
        url, body = "https://api.openai.com/v1/responses", {"model": model, "input": text, "stream": stream}
    else:
        host = "api.openai.com/v1/chat/completions" if protocol == "openai-chat" else "api.anthropic.com/v1/messages"
        url = f"https://{host}"
        body = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": text}], "stream": stream}
    return Call(number, protocol, url, body, stream, aborts=stream and number % ABORT_EVERY == 0)


class FaultyUpstream:
    """The fake upstream's script: the first attempt of every FAULT_EVERY-th request fails; every
    attempt's reply is counted per request marker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: Counter[int] = Counter()
        self.successes: Counter[int] = Counter()

    def __call__(self, req) -> Reply:
        found = MARKER.search(req.body) or MARKER.search(req.path.encode())
        if found is None:
            return default_script(req)
        number = int(found.group(1))
        with self.lock:
            self.attempts[number] += 1
            first = self.attempts[number] == 1
        fault = FIRST_ATTEMPT_FAULTS.get(number % FAULT_EVERY) if first else None
        reply = fault(req) if fault else default_script(req)
        if reply.status == 200 and not reply.reset:
            with self.lock:
                self.successes[number] += 1
        return reply


def whole_answer(call: Call, body: bytes) -> bool:
    """Whether a 200 carries a complete answer: JSON for a plain call; a stream whose last event is its
    protocol's last (an in-band error event, or a cut, ends it otherwise)."""
    if not call.stream:
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:
            return False
    events = [e for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
    ends = {"openai-chat": b"[DONE]", "openai-responses": b"response.completed", "anthropic": b"message_stop",
            "gemini": b"finishReason"}
    return bool(events) and ends[call.protocol] in events[-1]


async def one(client: httpx.AsyncClient, run: Run, call: Call, outcome: Counter, lost: list[str]) -> None:
    try:
        async with client.stream("POST", call.url, json=call.body, headers=HEADERS) as r:
            if call.aborts:
                async for _ in r.aiter_raw():
                    break
                outcome["client-abort"] += 1
                return
            body = await r.aread()
    except httpx.HTTPError as e:
        lost.append(f"#{call.number} {call.label}: {type(e).__name__}: {e}")
        return
    run.tally.answer(f"#{call.number} {call.label}", call.protocol, r.status_code, body, r.headers.get("content-type", ""))
    outcome[r.status_code] += 1
    if r.status_code not in EXPECTED:
        lost.append(f"#{call.number} {call.label}: unexpected {r.status_code} {body[:120]!r}")
    elif r.status_code == 200 and not whole_answer(call, body):
        lost.append(f"#{call.number} {call.label}: 200 but not a whole answer: {body[-160:]!r}")


async def drive(run: Run, requests: int, concurrency: int) -> tuple[Counter, list[str], float]:
    outcome: Counter = Counter()
    lost: list[str] = []
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(proxy=run.proxy.url, verify=str(run.proxy.ca), timeout=120, limits=limits) as client:
        async def worker() -> None:
            for number in queue:
                await one(client, run, make_call(number), outcome, lost)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome, lost, time.monotonic() - started


def key_audit(run: Run) -> tuple[dict[str, int], list[str], int]:
    """Every key's in-flight count, whether it is disabled, and the requests the store counted (which
    shows the audit read the proxy's live state), from the proxy's state store."""
    sys.path.insert(0, str(REPO / "addons"))
    from llmitm.config import load_config
    from llmitm.pool.table import key_rows
    from llmitm.provider_pools import pooled_keys, state_url_for

    time.sleep(1.0)  # routine state changes are written in batches (pool/statewriter.py)
    config = load_config(run.proxy.config_path)
    rows = key_rows(pooled_keys(config), state_url_for(config))
    in_flight = {f"{r.provider}/{r.key_id}": r.in_flight for r in rows if r.in_flight}
    disabled = [f"{r.provider}/{r.key_id}: {r.reason}" for r in rows if r.state == "disabled"]
    return in_flight, disabled, sum(r.requests for r in rows)


def soak(requests: int, concurrency: int) -> dict:
    script = FaultyUpstream()
    with Run("soak", make_config=soak_config) as run:
        run.upstream.script = script
        outcome, lost, seconds = asyncio.run(drive(run, requests, concurrency))
        time.sleep(0.5)  # aborted streams: the proxy notices the hang-up and frees the key
        in_flight, disabled, counted = key_audit(run)
    duplicated = sorted(n for n, count in script.successes.items() if count > 1)
    report = {
        "requests": requests, "concurrency": concurrency, "seconds": round(seconds, 1),
        "answers": {str(k): v for k, v in sorted(outcome.items(), key=lambda kv: str(kv[0]))},
        "faults_injected": sum(1 for n in range(requests) if n % FAULT_EVERY in FIRST_ATTEMPT_FAULTS),
        "upstream_attempts": sum(script.attempts.values()),
        "lost": len(lost), "duplicated": len(duplicated),
        "keys_in_flight_after": in_flight, "keys_disabled_after": disabled, "key_requests_counted": counted,
        **run.report(),
    }
    if lost:
        report["lost_examples"] = lost[:8]
    if duplicated:
        report["duplicated_examples"] = duplicated[:8]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests in all (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at once (default 32)")
    ns = parser.parse_args(argv)
    report = soak(ns.requests, ns.concurrency)
    print_report(report)
    failures = must_be_zero(report)
    failures += [f"{k} = {report[k]}" for k in ("lost", "duplicated", "transport_failures") if report[k]]
    failures += [f"{k} = {report[k]}" for k in ("keys_in_flight_after", "keys_disabled_after") if report[k]]
    if failures:
        print("scripts/soak: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
