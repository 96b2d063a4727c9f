from mitmproxy.test import tutils

from llmitm import credentials
from llmitm.jsonbytes import replace_top_level_string


def test_client_credential_removed_from_every_carrier():
    req = tutils.treq(path=b"/v1beta/models/m:generateContent?key=AIzaAPPKEY&alt=sse")
    req.headers["authorization"] = "Bearer sk-app"
    req.headers["x-api-key"] = "sk-app-2"
    req.headers["x-goog-api-key"] = "g-app"
    assert credentials.take_client_credential(req) == "sk-app"
    assert not any(h in req.headers for h in credentials.AUTH_HEADERS)
    assert req.path == "/v1beta/models/m:generateContent?alt=sse"


def test_put_and_redact():
    req = tutils.treq()
    credentials.put_credential(req, "anthropic", "sk-ant-secret-123456")
    assert req.headers["x-api-key"] == "sk-ant-secret-123456" and req.headers["anthropic-version"]
    credentials.redact(req)
    assert "secret" not in req.headers["x-api-key"]
    req.path = "/x?key=AIzaSECRETSECRET"
    credentials.redact(req)
    assert "SECRETSECRET" not in req.path


def test_model_rewrite_is_byte_exact_elsewhere():
    body = b'{ "messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}],\n "model" : "gpt-4o", "n":1.0e0, "extra":{"model":"keep"}}'
    out = replace_top_level_string(body, "model", "other")
    assert out == body.replace(b'"gpt-4o"', b'"other"')
