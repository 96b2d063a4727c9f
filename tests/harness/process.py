"""Servers the tests start as child processes: started without the caller's proxy variables, logged to
a file, and always stopped by their own PID (SIGTERM as a user's Ctrl-C would, SIGKILL after a grace
period), so that no test leaves a server behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path


def require_binary(binary: str, package: str) -> str:
    """The path of `binary`; a test that needs it is skipped where it is not installed, and fails in CI
    (where the image is meant to have it)."""
    import pytest  # here: scripts/robustness_lib uses this module without pytest

    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (Debian: apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def environment_without_proxies() -> dict[str, str]:
    """This process's environment minus *_proxy variables: a server under test must not send its own
    traffic through whatever proxy the test run itself was given."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL if `proc` has not exited within `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LoggedServer:
    """A child process whose output goes to `log_path`. Subclasses say how to start and when it is
    ready (`start()`); `with` starts and stops it."""

    stop_grace = 10.0  # seconds between SIGTERM and SIGKILL

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    def spawn(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, self.stop_grace)
        if self._log:
            self._log.close()

    def __enter__(self):
        return self.start()  # each subclass's own: spawn, then wait until it is ready

    def __exit__(self, *exc: object) -> None:
        self.stop()
