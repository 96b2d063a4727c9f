"""The fuzz and fault scripts, small enough for CI: hypothesis bodies on every generation endpoint and a
faulty upstream with aborting clients, through a real llmitm. Every answer is in the app's protocol,
nothing leaves unrouted or with the app's own key, no traceback."""

from __future__ import annotations

import sys

import pytest

from tests.harness.proxy import REPO

pytestmark = pytest.mark.e2e
sys.path.insert(0, str(REPO / "scripts"))


def test_fuzzed_bodies_are_answered_in_protocol_and_never_leave_unrouted(capsys):
    from robustness_lib.fuzz import main

    assert main(["--bodies", "40"]) == 0, capsys.readouterr().out[-3000:]


def test_upstream_faults_and_client_aborts_are_answered_in_protocol(capsys):
    from robustness_lib.faults import main

    assert main(["--rounds", "1"]) == 0, capsys.readouterr().out[-3000:]
