"""Capture → regression test: `llmitm.export` writes a translated flow as a fixture folder (bodies,
route, statuses; no header, no key) and `llmitm replay` runs it through a real llmitm against a
loopback upstream serving the recorded answer: the same app-facing result exits 0, a changed one 1
with a readable diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from llmitm.inspect import export
from tests.harness.fixtures import REPO
from tests.inspect.test_translation_view import APP_KEY, translated_flow  # noqa: F401 (a fixture)


def llmitm_replay(folder) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO / "addons")
    return subprocess.run([sys.executable, "-m", "llmitm.cli", "replay", str(folder)], capture_output=True, text=True,
                          env=env, timeout=180)


async def test_an_exported_translated_flow_replays_to_the_same_answer_and_a_changed_one_is_reported(
        translated_flow, tmp_path):  # noqa: F811
    (line,) = export.export_flows([translated_flow], tmp_path / "fixtures")
    assert line.startswith("wrote ")
    (folder,) = (tmp_path / "fixtures").iterdir()
    exchange = json.loads((folder / "exchange.json").read_text())
    assert exchange["route"]["client_protocol"] == "openai-chat" and exchange["route"]["upstream_protocol"] == "anthropic"
    assert all(APP_KEY not in p.read_text() for p in folder.iterdir())
    same = llmitm_replay(folder)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "same" in same.stdout

    answer = json.loads((folder / "upstream_response.json").read_text())
    answer["content"][1]["input"] = {"city": "Oakland"}  # the upstream (or the translation) now says otherwise
    (folder / "upstream_response.json").write_text(json.dumps(answer))
    changed = llmitm_replay(folder)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "DIFFERENT" in changed.stdout
    diff = [line.replace(" ", "") for line in changed.stdout.splitlines()]
    assert '-"city":"SF"' in diff and '+"city":"Oakland"' in diff
