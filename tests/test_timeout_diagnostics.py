"""A test that hangs fails at the per-test time limit, and the report shows the asyncio task that
hangs with the line it is stuck on (tests/conftest.py), not only an event loop sitting in select()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HANGING_TESTS = '''
import asyncio

async def swallow_cancellation():
    while True:
        try:
            await asyncio.sleep(3600)  # the stuck line
        except asyncio.CancelledError:
            pass

async def test_leaves_a_task_that_ignores_cancellation():
    asyncio.create_task(swallow_cancellation(), name="stubborn-task")

def test_next_test_still_runs():
    pass
'''


def test_hang_in_event_loop_teardown_fails_with_the_stuck_task(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGING_TESTS)
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text(textwrap.dedent("""\
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        timeout = 2
        timeout_method = signal
        """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Timeout (>2.0s) from pytest-timeout" in out
    assert "Pending asyncio tasks" in out
    assert "task 'stubborn-task'" in out
    assert "await asyncio.sleep(3600)  # the stuck line" in out
    assert "2 passed, 1 error" in out  # the hung test passes, its teardown errors; the run goes on
