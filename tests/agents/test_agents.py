"""Real coding agents through a real `llmitm run`, with their default settings, as a new user runs them.

Claude Code (`claude -p`), Codex (`codex exec`) and Gemini CLI (`gemini -p`), installed from npm at
pinned versions (install.py), each with a fresh HOME and workspace, only `HTTPS_PROXY` and llmitm's CA
set (the README's lines for that agent), and a placeholder key of its own. llmitm routes the agent's
provider host to a scripted model on loopback (tests/harness/agent_upstream.py) that speaks one of the
four protocols: the agent's own (passed through with a pooled key) or each of the other three
(translated). The model asks the agent to read a file holding a fresh token and answers with the
token found in the tool's result, so the token in the agent's final answer proves the whole tool loop.

The scripted model checks each request the way the real API does (schemas, sampling parameters,
signed thinking) and refuses any credential but the pooled key. An egress guard loaded beside llmitm
refuses every host but the AI hosts: no agent reaches beyond this machine.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.agent_upstream import ScriptedAgentUpstream
from tests.harness.fixtures import REPO
from tests.harness.proxy import ProxyProcess

from . import install

AGENT_TIMEOUT = 90  # seconds per agent run: a tool loop takes 5-15 s here; this bounds a hang
POOLED_KEY = "sk-llmitm-agents-pooled"
APP_KEY = "sk-app-placeholder-not-a-real-key"
PROTOCOLS = ("anthropic", "openai-responses", "openai-chat", "gemini")
UPSTREAM_MODEL = {"anthropic": "claude-sonnet-4-5", "openai-responses": "gpt-5.1-codex", "openai-chat": "gpt-4.1",
                  "gemini": "gemini-2.5-pro"}
AGENTS = {  # agent -> (its own protocol, the host it calls)
    "claude": ("anthropic", "api.anthropic.com"),
    "codex": ("openai-responses", "api.openai.com"),
    "gemini": ("gemini", "generativelanguage.googleapis.com"),
}
# Hosts each agent calls besides its provider even with telemetry off, all refused by the egress guard
# without harm to the run: Codex's update and plugin checks, Gemini CLI's usage statistics (Clearcut;
# only `privacy.usageStatisticsEnabled: false` in settings.json stops them). Any other host fails the test.
KNOWN_PHONE_HOME = {
    "claude": set(),
    "codex": {"api.github.com", "github.com", "chatgpt.com", "ab.chatgpt.com"},
    "gemini": {"play.googleapis.com"},
}
PROMPT = "What is the token written in the file {file}? Read the file, then reply with the token."


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs npm)")
    try:
        return install.install()
    except install.AgentsUnavailable as e:
        pytest.skip(f"the coding agents could not be installed: {e}")


def proxy_config(upstream_url: str, protocol: str, agent_protocol: str) -> str:
    model = "" if protocol == agent_protocol else f"\n    model: {UPSTREAM_MODEL[protocol]}"
    routes = "".join(f"\n  - match: {{host: {host}}}\n    provider: scripted{model}" for _, host in AGENTS.values())
    return f"""
state: memory
allow_local_destinations: false
providers:
  scripted:
    protocol: {protocol}
    base_url: {upstream_url}
    keys: ["{POOLED_KEY}"]
routes:{routes}
"""


# What the README's section for each agent adds to `eval "$(llmitm env)"`.
AGENT_ENV = {
    "claude": {"ANTHROPIC_API_KEY": APP_KEY, "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
    "codex": {"OPENAI_API_KEY": APP_KEY},
    "gemini": {"GEMINI_API_KEY": APP_KEY, "GEMINI_CLI_TRUST_WORKSPACE": "true", "GEMINI_TELEMETRY_ENABLED": "false"},
}


def llmitm_env(proxy: ProxyProcess) -> dict[str, str]:
    """The variables `llmitm env` prints for this proxy, as a user's `eval "$(llmitm env)"` sets them."""
    done = subprocess.run([sys.executable, "-m", "llmitm.cli", "env", "--listen-port", str(proxy.port), "--confdir",
                           str(proxy.confdir)], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "addons")})
    pairs = [line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if line.startswith("export ")]
    return {name: shlex.split(value)[0] if value else "" for name, value in pairs}


def agent_env(agent: str, proxy: ProxyProcess, home: Path) -> dict[str, str]:
    """`llmitm env`, the README's lines for the agent, a fresh HOME and the PATH: nothing else."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TERM": "dumb"}
    return env | llmitm_env(proxy) | AGENT_ENV[agent]


def agent_argv(node_modules: Path, agent: str, prompt: str) -> list[str]:
    base = install.command(node_modules, agent)
    return base + (["exec", prompt] if agent == "codex" else ["-p", prompt])


def as_text(output: bytes | str | None) -> str:
    """A timed-out run's output (bytes, even with text=True)."""
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def workspace(tmp_path: Path, token: str) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "token.txt").write_text(f"{token}\n")
    # Codex exec works inside a git repository only (its default); an empty one is what a user has.
    subprocess.run(["git", "init", "-q", str(ws)], check=True, capture_output=True)
    return ws


CASES = [pytest.param(agent, protocol, id=f"{agent}-{protocol}") for agent in sorted(AGENTS) for protocol in PROTOCOLS]


@pytest.mark.parametrize(("agent", "protocol"), CASES)
def test_agent_completes_a_tool_loop(agent, protocol, node_modules, tmp_path):
    agent_protocol = AGENTS[agent][0]
    token = "LLMITM-" + secrets.token_hex(6).upper()
    ws = workspace(tmp_path, token)
    home = tmp_path / "home"
    home.mkdir()
    upstream = ScriptedAgentUpstream(token, ws / "token.txt", POOLED_KEY)
    guard = Path(__file__).parent / "egress_guard.py"
    (tmp_path / "proxy").mkdir()
    with upstream, ProxyProcess(tmp_path / "proxy", proxy_config(upstream.url, protocol, agent_protocol),
                                extra=["-s", str(guard)]) as proxy:
        try:
            done = subprocess.run(agent_argv(node_modules, agent, PROMPT.format(file=ws / "token.txt")), cwd=ws,
                                  env=agent_env(agent, proxy, home), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=AGENT_TIMEOUT)
            out, err, code = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as e:
            out, err, code = as_text(e.stdout), as_text(e.stderr), "timeout"
        proxy_log = proxy.log()
    refused = sorted({line.split("agent-egress refused: ", 1)[1].strip() for line in proxy_log.splitlines()
                      if "agent-egress refused: " in line})
    story = (f"\nagent exit: {code}\nstdout: {out[-2000:]}\nstderr: {err[-3000:]}\nmodel answered: {upstream.answers}"
             f"\nmodel refused: {upstream.rejections}\nhosts refused: {refused}\nproxy log tail: {proxy_log[-3000:]}")
    assert set(refused) <= KNOWN_PHONE_HOME[agent], "the agent called hosts beyond its provider" + story
    assert not [p for p in upstream.other_paths if p.split("?")[0].endswith("/responses")], \
        "a WebSocket upgrade reached the upstream (llmitm answers it with 426)" + story
    assert not upstream.rejections, "the upstream refused a request the real API would refuse" + story
    assert token in out, "the agent's answer lacks the token its tool read" + story
    assert code == 0, story
    assert any("tool call" in a for a in upstream.answers), story
