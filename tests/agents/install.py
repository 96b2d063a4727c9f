"""The real agents, pinned in tests/agents/npm/package-lock.json, installed once with `npm ci` into a
cache folder named after the lock's hash (`.cache/agents-npm/<hash>`, gitignored): a new pin installs
afresh, an unchanged one costs nothing.

`--ignore-scripts`: npm 11 runs no unapproved install script anyway, and none is needed — Claude Code's
postinstall only copies its native binary over a launcher (its `cli-wrapper.cjs` finds the binary
without it), Gemini CLI's keytar and node-pty builds are optional.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.harness.fixtures import REPO

NPM_DIR = Path(__file__).parent / "npm"
INSTALL_TIMEOUT = 600  # seconds; ~1 GB of native binaries (Claude Code and Codex ship one each)


class AgentsUnavailable(Exception):
    """The agents cannot be installed here; the message says why (the tests skip with it)."""


def cache_dir() -> Path:
    lock = (NPM_DIR / "package-lock.json").read_bytes()
    return REPO / ".cache" / "agents-npm" / hashlib.sha256(lock).hexdigest()[:16]


def install() -> Path:
    """The node_modules folder holding the pinned agents, installing it on first use."""
    target = cache_dir()
    if (target / ".installed").exists():
        return target / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise AgentsUnavailable("npm is not installed (Debian: apt-get install npm)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(NPM_DIR / name, staging / name)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging,
                              env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise AgentsUnavailable(f"npm ci did not finish within {INSTALL_TIMEOUT}s") from None
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise AgentsUnavailable(f"npm ci failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    (staging / ".installed").write_text("")
    if target.exists():  # another run finished first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(target)
    return target / "node_modules"


def command(node_modules: Path, agent: str) -> list[str]:
    """How to start each agent from the installed packages."""
    if agent == "claude":
        return ["node", str(node_modules / "@anthropic-ai" / "claude-code" / "cli-wrapper.cjs")]
    return [str(node_modules / ".bin" / {"codex": "codex", "gemini": "gemini"}[agent])]
