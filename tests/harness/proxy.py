"""A real llmitm (mitmdump) subprocess on a free loopback port with its own confdir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .fixtures import REPO

LISTENING = re.compile(rb"listening at (?:http://)?\*?[\[\]0-9a-fA-F.:]*?:(\d+)")


def mitmweb_lacks_auth() -> bool:
    """mitmproxy 11.0.2 (Python 3.11): mitmweb has no authentication at all."""
    from mitmproxy.version import VERSION

    return tuple(int(p) for p in VERSION.split(".")[:2]) < (11, 1)


class ProxyProcess:
    """`llmitm run` as the README starts it; stop() sends SIGTERM as a user's Ctrl-C would."""

    def __init__(self, workdir: Path, config: str | None, extra: list[str] = (), env: dict[str, str] | None = None, mode: str = "run",
                 options: list[str] = ()):
        self.mode = mode  # "run" (mitmdump) or "web" (mitmweb)
        self.options = list(options)  # llmitm's own options, e.g. ["--reverse", "openai=4000"]
        self.workdir = workdir
        self.confdir = workdir / "conf"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / "llmitm.yaml"
            self.config_path.write_text(config)
        self.log_path = workdir / "proxy.log"
        self.extra = list(extra)
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

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
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYTHONPATH"] = str(REPO / "addons") + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT, env=env)
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

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

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
