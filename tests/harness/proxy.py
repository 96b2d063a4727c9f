"""A real llmitm (mitmdump) subprocess on a free loopback port with its own confdir."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .fixtures import REPO
from .net import free_port, mitmweb_options
from .process import LoggedServer, environment_without_proxies

LISTENING = re.compile(rb"listening at (?:http://)?\*?[\[\]0-9a-fA-F.:]*?:(\d+)")


def mitmweb_lacks_auth() -> bool:
    """mitmproxy 11.0.2 (Python 3.11): mitmweb has no authentication at all."""
    from mitmproxy.version import VERSION

    return tuple(int(p) for p in VERSION.split(".")[:2]) < (11, 1)


class ProxyProcess(LoggedServer):
    """`llmitm run` as the README starts it; stop() sends SIGTERM as a user's Ctrl-C would."""

    def __init__(self, workdir: Path, config: str | None, extra: list[str] = (), env: dict[str, str] | None = None, mode: str = "run",
                 options: list[str] = ()):
        super().__init__(workdir / "proxy.log")
        self.mode = mode  # "run" (mitmdump) or "web" (mitmweb)
        self.options = list(options)  # llmitm's own options, e.g. ["--reverse", "openai=4000"]
        self.workdir = workdir
        self.confdir = workdir / "conf"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / "llmitm.yaml"
            self.config_path.write_text(config)
        self.extra = list(extra)
        self.env = env or {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llmitm.cli", self.mode, "--listen-port", "0", "--confdir", str(self.confdir)]
        if self.config_path:
            cmd += ["-c", str(self.config_path)]
        cmd += self.options
        if self.mode == "web" and mitmweb_lacks_auth():
            cmd += ["--allow-unauthenticated-web"]  # tests run on loopback in a sandbox
        return cmd + ["--", *self.extra]

    def start(self, timeout: float = 30.0) -> ProxyProcess:
        env = environment_without_proxies()
        env["PYTHONPATH"] = str(REPO / "addons") + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env)
        self.spawn(self.command(), self.workdir, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmitm exited with {self.proc.returncode}:\n{self.log()}")
            log = self.log_path.read_bytes()
            m = LISTENING.search(log)
            if m and self.ca.exists() and b"exiting..." not in log:
                self.port = int(m.group(1))
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"llmitm did not start within {timeout}s:\n{self.log()}")

    def client_env(self) -> dict[str, str]:
        """What `llmitm env` tells a user to export, for this instance."""
        return {
            "HTTPS_PROXY": self.url,
            "HTTP_PROXY": self.url,
            "NO_PROXY": "",
            "SSL_CERT_FILE": str(self.ca),
            "REQUESTS_CA_BUNDLE": str(self.ca),
            "CURL_CA_BUNDLE": str(self.ca),
        }

    def sdk_client(self, sdk: str, api_key: str, *, timeout: float = 30, **options):
        """An official SDK client ("openai" or "anthropic") whose HTTPS goes through this proxy and trusts
        its CA, as an app configured by `llmitm env` would; `api_key` is the app's own. DefaultHttpxClient:
        the SDK's own client class (httpx in openai 2.x, httpx2 in 3.x)."""
        module = importlib.import_module(sdk)
        client = module.OpenAI if sdk == "openai" else module.Anthropic
        return client(api_key=api_key, max_retries=0, **options,
                      http_client=module.DefaultHttpxClient(proxy=self.url, verify=str(self.ca), timeout=timeout))


def module_proxy(name: str, config_of, extra: list[str] = ()):
    """A test module's `proxy` fixture: one llmitm for the whole module (in a folder named after `name`),
    configured by `config_of(upstream.url)` against the module's fake upstream."""
    import pytest  # here: scripts/robustness_lib drives ProxyProcess without pytest

    @pytest.fixture(scope="module")
    def proxy(upstream, tmp_path_factory):
        with ProxyProcess(tmp_path_factory.mktemp(name), config_of(upstream.url), extra=list(extra)) as p:
            yield p

    return proxy


def claude_for_openai_apps(upstream_url: str, keys: list[str], provider_options: str = "") -> str:
    """A config with the pool in memory and one Anthropic provider, `claude`, serving every OpenAI app
    as claude-sonnet-4-5: the smallest translated setup (`provider_options` e.g. ", strategy: round-robin")."""
    return f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: {json.dumps(keys)}{provider_options}}}
routes:
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
"""


@contextmanager
def running_mitmweb(workdir: Path, config: str, password: str, extra: list[str] = ()) -> Iterator[tuple[ProxyProcess, str]]:
    """llmitm under mitmweb with a known password on a free port: the proxy, and the web UI's address."""
    port = free_port()
    with ProxyProcess(workdir, config, extra=mitmweb_options(port, password) + list(extra), mode="web") as proxy:
        yield proxy, f"http://127.0.0.1:{port}"
