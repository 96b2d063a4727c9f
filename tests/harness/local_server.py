"""A real OpenAI-compatible server (`transformers serve`) running a tiny SmolLM3 on loopback.

Three steps, each cached and each bounded in time with a message that says what failed:

1. `ensure_server_venv()`: a Python 3.11 venv `.venv-smollm3` with the `local-test` extra of
   pyproject.toml (torch 2.13.0 CPU, which pip takes from this machine's disk, and
   `transformers[serving]`). The server is a subprocess, so the suite itself may run on any Python.
2. `ensure_model()`: the tiny model built by `smollm3_model.py` inside that venv, cached under
   `.cache/smollm3-tiny/<hash of the recipe and the pins>/HuggingFaceTB/SmolLM3-3B`.
3. `LocalServer`: `transformers serve HuggingFaceTB/SmolLM3-3B` started in that cache folder, so the
   served model's name *is* the real model id (SERVING.md: the server pins the model it was started
   with and answers a request naming any other model with an error; a relative path that looks like
   the Hub id, with HF_HUB_OFFLINE=1, makes clients' real id valid). Stopped by its PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from . import smollm3_model
from .fixtures import REPO
from .net import free_port
from .process import LoggedServer, environment_without_proxies

EXTRA = "local-test"
SERVER_VENV = REPO / ".venv-smollm3"
CACHE = REPO / ".cache" / "smollm3-tiny"
MODEL_ID = "HuggingFaceTB/SmolLM3-3B"
VENV_TIMEOUT = 900.0  # seconds; about 45 s on an idle 2-core machine (torch comes from local disk)
BUILD_TIMEOUT = 300.0  # about 10 s
START_TIMEOUT = 120.0  # about 5 s
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
# One torch thread: on a busy 2-core machine OpenMP's worker threads spin-wait for each other and a
# token takes ~235 ms instead of ~20 ms (measured with the tiny model and a 600-token prompt).
SERVER_ENV = {**OFFLINE, "OMP_NUM_THREADS": "1"}


class LocalServerError(RuntimeError):
    """The local model server could not be set up: the message says which step and how to redo it."""


def requirements() -> list[str]:
    """The `local-test` extra's pins, read from pyproject.toml (the one place they are written)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][EXTRA])


def find_python_311() -> str:
    """Python 3.11: the interpreter torch 2.13.0's CPU wheel on this machine's disk is built for.
    The same places scripts/_env.sh looks (pyenv shims refuse versions not selected)."""
    candidates = [shutil.which("python3.11"), *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.11*/bin/python3")),
                  "/usr/local/bin/python3.11", "/usr/bin/python3.11"]
    if sys.version_info[:2] == (3, 11):
        candidates.insert(0, sys.executable)
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    raise LocalServerError("no Python 3.11 found for the SmolLM3 server venv (torch 2.13.0 CPU is installed for 3.11)")


def _run(cmd: list[str], what: str, timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise LocalServerError(f"{what}: no result within {timeout:.0f}s ({' '.join(cmd)})") from e
    if done.returncode != 0:
        raise LocalServerError(f"{what} failed with exit code {done.returncode}:\n{done.stderr[-4000:]}")
    return done


def ensure_server_venv(timeout: float = VENV_TIMEOUT) -> Path:
    """`.venv-smollm3` with the pinned extra, created or updated only when the pins changed.
    Returns its python."""
    python = SERVER_VENV / "bin" / "python"
    stamp = SERVER_VENV / ".llmitm-local-test"
    want = json.dumps(requirements())
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    deadline = time.monotonic() + timeout
    what = f"creating {SERVER_VENV.name} (delete it and rerun to start over)"
    if not python.exists():
        _run([find_python_311(), "-m", "venv", str(SERVER_VENV)], what, timeout)
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements()],
         f"installing the {EXTRA} extra into {SERVER_VENV.name}", max(deadline - time.monotonic(), 1.0))
    stamp.write_text(want)
    return python


def model_home() -> Path:
    """The cache folder for the current recipe and pins; the model is at `model_home() / MODEL_ID`."""
    key = hashlib.sha256()
    for f in smollm3_model.recipe_files():
        key.update(f.read_bytes())
    key.update(json.dumps(requirements()).encode())
    return CACHE / key.hexdigest()[:16]


def ensure_model(python: Path, timeout: float = BUILD_TIMEOUT) -> Path:
    """The tiny model's folder, built on first use (into a temporary folder, renamed when complete)."""
    home = model_home()
    target = home / MODEL_ID
    if (target / "config.json").exists():
        return home
    partial = home.with_name(home.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _run([str(python), smollm3_model.__file__, "build", str(partial / MODEL_ID)], "building the tiny SmolLM3",
             timeout, env={**os.environ, **OFFLINE})
    except LocalServerError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(home, ignore_errors=True)
    partial.rename(home)
    for stale in CACHE.iterdir():  # models of earlier recipes
        if stale != home and "." not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return home


def prompt_token_counts(python: Path, home: Path, cases: list[dict]) -> list[int]:
    """Prompt tokens of each case ({"messages", "tools", "enable_thinking"}) rendered with the served model's
    own tokenizer and template: what the server must report as usage for that thinking branch."""
    done = _run([str(python), smollm3_model.__file__, "count", str(home / MODEL_ID)], "rendering the chat template",
                BUILD_TIMEOUT, input=json.dumps(cases), env={**os.environ, **OFFLINE})
    return json.loads(done.stdout)


class LocalServer(LoggedServer):
    """`transformers serve` for the model in `home`, on a free loopback port, logging to `log_path`."""

    stop_grace = 15.0

    def __init__(self, python: Path, home: Path, log_path: Path):
        super().__init__(log_path)
        self.python, self.home = python, home
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cli = self.python.parent / "transformers"
        return [str(cli), "serve", MODEL_ID, "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]

    def start(self, timeout: float = START_TIMEOUT) -> LocalServer:
        return self.launch().wait_ready(timeout)

    def launch(self) -> LocalServer:
        """Start the process and return at once (the server takes 5–30 s to load: other set-up can
        run meanwhile); `wait_ready()` then waits for it."""
        self.port = free_port()
        self.spawn(self.command(), self.home, {**environment_without_proxies(), **SERVER_ENV})
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> LocalServer:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalServerError(f"transformers serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise LocalServerError(f"transformers serve did not answer /health within {timeout:.0f}s:\n{self.log()}")

    def log(self) -> str:
        return super().log()[-8000:]
