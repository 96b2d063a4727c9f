"""A small soak through a real llmitm (scripts/soak runs the full size): mixed protocols, streamed and
not, translated and passed through, 32 at once, faults on first attempts and clients hanging up. No
answer is lost or duplicated, every key's in-flight count returns to 0 and no key is disabled."""

from __future__ import annotations

import sys

import pytest

from tests.harness.proxy import REPO

pytestmark = pytest.mark.e2e
sys.path.insert(0, str(REPO / "scripts"))


def test_a_thousand_mixed_requests_with_faults_lose_nothing_and_leak_no_key_slot():
    from robustness_lib.soak import soak

    report = soak(requests=1000, concurrency=32)
    assert report["lost"] == 0 and report["duplicated"] == 0, report
    assert report["keys_in_flight_after"] == {} and report["keys_disabled_after"] == [], report
    assert report["key_requests_counted"] >= 1000 - report["answers"].get("client-abort", 0), report
    assert report["upstream_attempts"] > 1000 and report["faults_injected"] == 120, report
    for name in ("answers_not_in_protocol_error_shape", "tracebacks_in_log", "requests_unrouted",
                 "requests_with_the_apps_own_key", "transport_failures"):
        assert report[name] == 0, report
