"""scripts/faults: a faulty upstream (resets, mid-stream aborts, garbage, compressed junk, overload,
billing errors) and clients that abort streams, against every app protocol through a real llmitm."""

from __future__ import annotations

import argparse
import gzip
import sys
import time

import httpx

from .bodies import ENDPOINTS, Endpoint
from .harness import (  # the test harness's fake upstream (harness puts the repo on sys.path)
    COOLDOWN_MAX,
    PLACEHOLDER,
    Reply,
    Run,
    default_script,
    must_be_zero,
    print_report,
)

HEADERS = {"authorization": f"Bearer {PLACEHOLDER}", "x-api-key": PLACEHOLDER, "x-goog-api-key": PLACEHOLDER,
           "anthropic-version": "2023-06-01"}


def request_body(endpoint: Endpoint) -> dict:
    if endpoint.protocol == "gemini":
        return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    if endpoint.protocol == "openai-responses":
        return {"model": "gpt-4o", "input": "hi", "stream": endpoint.stream}
    body = {"model": "gpt-4o", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    return {**body, "stream": True} if endpoint.stream else body


def aborting(reply_for):
    """A reply that streams a few events of the normal answer, then drops the connection."""
    def script(req):
        reply = reply_for(req)
        if reply.events:
            reply.abort_after = max(1, len(reply.events) // 2)
        else:
            reply.reset = True
        return reply
    return script


FAULTS = {
    "reset-before-headers": lambda req: Reply(reset=True),
    "mid-stream-abort": aborting(default_script),
    "not-json": lambda req: Reply(status=200, body=b"<html>upstream maintenance</html>", headers={"content-type": "text/html"}),
    "gzip-junk": lambda req: Reply(status=200, body=b"\x1f\x8b\x08\x00garbage", headers={"content-encoding": "gzip"}),
    "gzip-bomb": lambda req: Reply(status=200, body=gzip.compress(b"{" * 20_000_000), headers={"content-encoding": "gzip"}),
    "overloaded": lambda req: Reply.json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                                         headers={"retry-after": "1"}),
    "insufficient-quota": lambda req: Reply.json(429, {"error": {"message": "You exceeded your current quota, please check "
                                                       "your plan and billing details.", "type": "insufficient_quota",
                                                       "code": "insufficient_quota"}}),
    "wrong-json-shape": lambda req: Reply.json(200, {"choices": "nope", "content": 7, "candidates": [None], "output": {}}),
}


# What the app may see for each fault: never a 4xx that blames it for the provider's trouble.
EXPECTED_STATUS = {
    "reset-before-headers": {502, 503},
    "mid-stream-abort": {200, 502, 503},  # a stream ends with the protocol's error event; a body is a 502
    "not-json": {502},
    "gzip-junk": {502},
    "gzip-bomb": {502},
    "overloaded": {429, 503, 529},
    "insufficient-quota": {429},
    "wrong-json-shape": {502},
}
# Text the answer must carry: the provider's own words where only a human can fix the cause.
EXPECTED_TEXT = {"insufficient-quota": b"billing"}


def client_aborts(run: Run, client: httpx.Client, endpoint: Endpoint) -> None:
    """Read the first bytes of a slow stream, then hang up (a user pressing stop)."""
    run.upstream.script = lambda req: Reply(**{**default_script(req).__dict__, "delay": 0.05})
    with client.stream("POST", endpoint.url, json=request_body(endpoint), headers=HEADERS) as r:
        for _ in r.iter_bytes():
            break
    run.tally.statuses["client-abort"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/faults", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="requests per fault and endpoint (default 20)")
    ns = parser.parse_args(argv)
    by_fault: dict[str, dict[int, int]] = {}
    unexpected: list[str] = []
    with Run("faults") as run:
        with httpx.Client(proxy=run.proxy.url, verify=str(run.proxy.ca), timeout=60) as client:
            for name, script in FAULTS.items():
                time.sleep(COOLDOWN_MAX + 0.2)  # keys cooled by the previous fault are ready again
                run.upstream.script = script
                seen: dict[int, int] = {}
                for endpoint in ENDPOINTS:
                    if endpoint.label == "count-tokens":
                        continue
                    for _ in range(ns.rounds):
                        try:
                            r = client.post(endpoint.url, json=request_body(endpoint), headers=HEADERS)
                        except httpx.HTTPError as e:
                            run.tally.transport_failures.append(f"{name}/{endpoint.label}: {type(e).__name__}: {e}")
                            continue
                        seen[r.status_code] = seen.get(r.status_code, 0) + 1
                        if r.status_code not in EXPECTED_STATUS[name] or EXPECTED_TEXT.get(name, b"") not in r.content:
                            unexpected.append(f"{name}/{endpoint.label}: {r.status_code} {r.content[:120]!r}")
                        run.tally.answer(f"{name}/{endpoint.label}", endpoint.protocol, r.status_code, r.content,
                                         r.headers.get("content-type", ""))
                by_fault[name] = seen
            for endpoint in [e for e in ENDPOINTS if e.stream]:
                for _ in range(ns.rounds):
                    client_aborts(run, client, endpoint)
            # After every abort, the pool must still serve: aborts are not the key's fault.
            run.upstream.script = default_script
            time.sleep(COOLDOWN_MAX + 0.2)
            after = [client.post(e.url, json=request_body(e), headers=HEADERS).status_code for e in ENDPOINTS if e.stream]
    report = {"rounds": ns.rounds, "answers_by_fault": by_fault, "served_after_client_aborts": after,
              "answers_not_as_expected": len(unexpected), **run.report()}
    if unexpected:
        report["unexpected_examples"] = unexpected[:8]
    print_report(report)
    failures = must_be_zero(report)
    if unexpected:
        failures.append(f"{len(unexpected)} answers not as expected for their fault")
    if any(status != 200 for status in after):
        failures.append(f"after client aborts the pool answered {after}")
    if failures:
        print("scripts/faults: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
