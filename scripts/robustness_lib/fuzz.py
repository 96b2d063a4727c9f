"""scripts/fuzz: hypothesis-generated bodies against every generation endpoint through a real llmitm."""

from __future__ import annotations

import argparse
import sys

import httpx
from hypothesis import HealthCheck, Phase, given, settings

from .bodies import ENDPOINTS, Endpoint, body
from .harness import PLACEHOLDER, Run, must_be_zero, print_report

HEADERS = {"authorization": f"Bearer {PLACEHOLDER}", "x-api-key": PLACEHOLDER, "x-goog-api-key": PLACEHOLDER,
           "content-type": "application/json", "anthropic-version": "2023-06-01"}


def fuzz_endpoint(run: Run, client: httpx.Client, endpoint: Endpoint, count: int, seed: int) -> None:
    @settings(max_examples=count, database=None, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(payload=body(endpoint.protocol, endpoint.stream))
    def send(payload: bytes) -> None:
        try:
            r = client.post(endpoint.url, content=payload, headers=HEADERS)
        except httpx.HTTPError as e:
            run.tally.transport_failures.append(f"{endpoint.label}: {type(e).__name__}: {e}")
            return
        run.tally.answer(endpoint.label, endpoint.protocol, r.status_code, r.content, r.headers.get("content-type", ""))

    send()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__)
    parser.add_argument("--bodies", type=int, default=10_000, help="bodies per endpoint (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    with Run("fuzz") as run:
        with httpx.Client(proxy=run.proxy.url, verify=str(run.proxy.ca), timeout=30) as client:
            for endpoint in ENDPOINTS:
                fuzz_endpoint(run, client, endpoint, ns.bodies, ns.seed)
    report = {"bodies_per_endpoint": ns.bodies, "endpoints": len(ENDPOINTS), **run.report()}
    print_report(report)
    failures = must_be_zero(report)
    if failures:
        print("scripts/fuzz: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0
