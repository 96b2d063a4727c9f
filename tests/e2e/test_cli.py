"""`llmitm check`, `llmitm env` and start-up refusals, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.fixtures import REPO
from tests.harness.proxy import ProxyProcess

from .test_foundation import peer_cert_through_proxy

BROKEN = {
    "bad-protocol": ("providers: {p: {protocol: openai-chatt, base_url: 'http://127.0.0.1:9'}}", "providers.p.protocol"),
    "missing-provider": ("providers: {}\nroutes: [{provider: ghost}]", "routes.0.provider: unknown provider 'ghost'"),
    "unset-var": ("providers: {p: {protocol: anthropic, base_url: 'http://127.0.0.1:9', keys: ['${LLMITM_TEST_UNSET}']}}", "${LLMITM_TEST_UNSET}"),
    "bad-yaml": ("providers: {p: [", "not valid YAML"),
    "route-unknown-fallback": ("providers: {p: {protocol: anthropic, base_url: 'http://127.0.0.1:9'}}\nroutes: [{provider: p, fallback: [q]}]", "routes.0.fallback.0"),
    "no-base-url": ("providers: {p: {protocol: gemini}}", "providers.p.base_url"),
}


def llmitm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LLMITM_TEST_UNSET"}
    env["PYTHONPATH"] = str(REPO / "addons")
    return subprocess.run([sys.executable, "-m", "llmitm.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_check_names_the_broken_field(tmp_path, name):
    text, field = BROKEN[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    out = llmitm("check", "-c", str(path))
    assert out.returncode != 0
    assert field in out.stderr and str(path) in out.stderr


def test_run_refuses_a_broken_config(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN["bad-protocol"][0])
    out = llmitm("run", "-c", str(path), "--listen-port", "0", "--confdir", str(tmp_path / "conf"))
    assert out.returncode != 0 and "providers.p.protocol" in out.stderr
    # Loaded directly by mitmdump, the addon refuses the same config.
    mitmdump = Path(sys.executable).with_name("mitmdump")
    out = subprocess.run([str(mitmdump), "-p", "0", "-s", str(REPO / "addons" / "llmitm_addon.py"), "--set", f"llmitm_config={path}",
                          "--set", f"confdir={tmp_path / 'conf'}"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "providers.p.protocol" in out.stdout + out.stderr


def test_check_prints_masked_summary(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("providers: {p: {protocol: anthropic, base_url: 'http://127.0.0.1:9', keys: [sk-ant-secret-value-9876]}}\n"
                    "routes: [{match: {host: api.anthropic.com}, provider: p}]")
    out = llmitm("check", "-c", str(path))
    assert out.returncode == 0, out.stderr
    assert "sk-ant-secret-value" not in out.stdout and "9876" in out.stdout and "api.anthropic.com" in out.stdout


def test_env_creates_the_ca_and_prints_client_settings(tmp_path):
    out = llmitm("env", "--listen-port", "8899", "--confdir", str(tmp_path / "conf"))
    assert out.returncode == 0, out.stderr
    lines = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    assert lines["HTTPS_PROXY"] == "http://127.0.0.1:8899" and lines["NODE_USE_ENV_PROXY"] == "1"
    assert (tmp_path / "conf" / "mitmproxy-ca-cert.pem").exists()
    assert b"BEGIN CERTIFICATE" in Path(lines["SSL_CERT_FILE"]).read_bytes()
    assert {"HTTP_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} <= set(lines)


def test_zero_config_starts_and_intercepts_known_ai_hosts(tmp_path):
    with ProxyProcess(tmp_path, None) as proxy:
        ca = proxy.ca.read_text()
        der = peer_cert_through_proxy(proxy.port, "api.anthropic.com", 443)
        # The leaf llmitm presents for an AI host is signed by its own CA (inspection mode).
        from cryptography import x509

        leaf = x509.load_der_x509_certificate(der)
        issuer = x509.load_pem_x509_certificate(ca.encode())
        assert leaf.issuer == issuer.subject
        assert "built-in default" in proxy.log() or proxy.proc.poll() is None
