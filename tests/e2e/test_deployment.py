"""The two-instance deployment: two llmitm processes sharing one key pool through a real redis-server,
behind a real HAProxy configured from config/container/haproxy.cfg; and the container image where a
Docker daemon is available."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.net import free_port
from tests.harness.process import require_binary, stop_process
from tests.harness.proxy import REPO, ProxyProcess
from tests.harness.upstream import key_rate_limited

pytestmark = pytest.mark.e2e

CONTAINER = REPO / "config" / "container"
KEY_A, KEY_B = "sk-deploy-key-a-000000", "sk-deploy-key-b-000000"
CLIENT_KEY = "team-client-key-000001"


def haproxy_config(listen: int, backends: list[int]) -> str:
    """The committed haproxy.cfg, pointed at loopback ports instead of compose service names."""
    text = (CONTAINER / "haproxy.cfg").read_text().replace("bind :8080", f"bind 127.0.0.1:{listen}")
    lines = [line for line in text.splitlines() if not line.strip().startswith("server ")]
    lines += [f"    server s{i} 127.0.0.1:{port}" for i, port in enumerate(backends)]
    return "\n".join(lines) + "\n"


def test_two_instances_behind_haproxy_honour_each_others_cooldowns(tmp_path, upstream):
    from tests.pool.redis_server import running_redis_server

    haproxy = require_binary("haproxy", "haproxy")

    upstream.script = key_rate_limited(KEY_A, retry_after=120)
    with running_redis_server(str(tmp_path)) as redis_url:
        # The committed example config, with the test's upstream and keys.
        config = (CONTAINER / "llmitm.yaml").read_text().replace("https://api.openai.com", upstream.url)
        env = {"LLMITM_STATE": redis_url, "LLMITM_CLIENT_KEY": CLIENT_KEY, "OPENAI_KEY_1": KEY_A, "OPENAI_KEY_2": KEY_B}
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        one = ProxyProcess(tmp_path / "one", config, env=env)
        with one:
            # Both instances present the same CA, as the compose file's `ca` service arranges.
            shutil.copytree(one.confdir, tmp_path / "two" / "conf")
            with ProxyProcess(tmp_path / "two", config, env=env) as two:
                balancer_port = free_port()
                cfg = tmp_path / "haproxy.cfg"
                cfg.write_text(haproxy_config(balancer_port, [one.port, two.port]))
                proc = subprocess.Popen([haproxy, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                try:
                    wait_for_port(balancer_port)
                    served = [post_through(balancer_port, one.ca) for _ in range(8)]
                finally:
                    stop_process(proc, grace=10)
                two_log = two.log()
            one_log = one.log()
    assert served == [200] * 8
    keys = [r.key for r in upstream.received]
    assert keys.count(KEY_A) == 1, keys  # tried once, cooled down, never again by either instance
    assert "chat/completions" in one_log and "chat/completions" in two_log  # the balancer used both


def post_through(port: int, ca: Path) -> int:
    # One connection per request, so that the TCP balancer alternates instances.
    with httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=str(ca), timeout=30) as client:
        r = client.post("https://api.openai.com/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT_KEY}"},
                        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    time.sleep(0.3)  # the state each instance reads from Redis is at most this stale
    return r.status_code


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def test_container_image_builds_and_runs_as_non_root(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no reachable Docker daemon on this machine (and base images could not be pulled: only the "
                    "package registries are reachable here); the two-instance test above covers the same "
                    "deployment with local processes")
    tag = "llmitm-test:latest"
    subprocess.run([docker, "build", "-f", str(CONTAINER / "Dockerfile"), "-t", tag, str(REPO)], check=True, timeout=900)
    user = subprocess.run([docker, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, check=True)
    assert user.stdout.strip() != "0"
