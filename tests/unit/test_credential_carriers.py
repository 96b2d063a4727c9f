"""Where each protocol carries an API key: the app's key is taken from every carrier, a key is written
where the upstream's protocol expects it, and whatever stays on a sent request is masked."""

import os
import subprocess
import sys

import pytest
from mitmproxy.test import tutils

from llmitm import credentials
from llmitm.protocols import REGISTRY


def test_client_credential_removed_from_every_carrier():
    req = tutils.treq(path=b"/v1beta/models/m:generateContent?key=AIzaAPPKEY&alt=sse")
    req.headers["authorization"] = "Bearer sk-app"
    req.headers["x-api-key"] = "sk-app-2"
    req.headers["x-goog-api-key"] = "g-app"
    assert credentials.take_client_credential(req) == "sk-app"
    assert not any(h in req.headers for h in REGISTRY.credential_header_names)
    assert req.path == "/v1beta/models/m:generateContent?alt=sse"


def test_a_key_only_in_the_query_is_taken():
    req = tutils.treq(path=b"/v1beta/models/m:generateContent?key=AIzaAPPKEY")
    assert credentials.take_client_credential(req) == "AIzaAPPKEY"
    assert req.path == "/v1beta/models/m:generateContent"


@pytest.mark.parametrize(("protocol", "header", "value"), [
    ("openai-chat", "authorization", "Bearer sk-secret-123456"),
    ("openai-responses", "authorization", "Bearer sk-secret-123456"),
    ("anthropic", "x-api-key", "sk-secret-123456"),
    ("gemini", "x-goog-api-key", "sk-secret-123456"),
])
def test_put_writes_the_protocols_carrier_and_redact_masks_it(protocol, header, value):
    req = tutils.treq()
    credentials.put_credential(req, protocol, "sk-secret-123456")
    assert req.headers[header] == value
    credentials.redact(req)
    assert "secret" not in req.headers[header]
    assert req.headers[header].startswith(value[: value.index("sk-")])  # "Bearer " kept


def test_anthropic_version_is_added_only_when_missing():
    req = tutils.treq()
    credentials.put_credential(req, "anthropic", "sk-ant-secret-123456")
    assert req.headers["anthropic-version"] == REGISTRY.wire("anthropic").REQUIRED_HEADERS["anthropic-version"]
    req.headers["anthropic-version"] = "2099-01-01"
    credentials.put_credential(req, "anthropic", "sk-ant-secret-123456")
    assert req.headers["anthropic-version"] == "2099-01-01"
    assert REGISTRY.credential_headers("anthropic", "k", ["Anthropic-Version"]) == [("x-api-key", "k")]


def test_redact_masks_a_query_key():
    req = tutils.treq(path=b"/x?alt=sse&key=AIzaSECRETSECRET")
    credentials.redact(req)
    assert "SECRETSECRET" not in req.path and "alt=sse" in req.path


def test_the_relay_needs_no_mitmproxy():
    # The relay learns where keys go from the registry; mitmproxy stays in the addon's modules.
    code = "import sys, llmitm.relay; sys.exit('mitmproxy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": os.pathsep.join(sys.path)}).returncode == 0
