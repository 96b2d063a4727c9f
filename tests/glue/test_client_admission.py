"""The planner's client admission (plan.py `Planner.admitted`, clients.py), without mitmproxy: who is
asking is read from any protocol's credential carrier or the proxy user, the client's name goes on the
flow record, key pins are gated, and a request body is decoded only up to max_body_bytes."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from llmitm.clients import app_credential
from llmitm.config import parse_config
from llmitm.plan import AppRequest, Forward, PassThrough, Planner, Refuse
from tests.glue.conftest import config_text

CHAT = "/v1/chat/completions"
BODY = json.dumps({"model": "gpt-4o", "messages": []}).encode()
KEY = "llmitm-client-glue-0000001"


def planner(clients: str = "", max_body: int = 4096) -> Planner:
    text = config_text("http://127.0.0.1:9") + f"max_body_bytes: {max_body}\n" + clients
    return Planner(parse_config(text, "<glue test>"))


def chat(headers: dict[str, str] | None = None, **kw) -> AppRequest:
    return AppRequest("POST", "api.openai.com", CHAT, headers or {}, BODY, **kw)


@pytest.mark.parametrize("headers, path", [
    ({"authorization": f"Bearer {KEY}"}, CHAT),
    ({"authorization": f"bearer {KEY}"}, CHAT),
    ({"x-api-key": KEY}, CHAT),
    ({"x-goog-api-key": KEY}, CHAT),
    ({}, f"/v1beta/models/m:generateContent?alt=sse&key={KEY}"),
])
def test_the_app_credential_is_read_from_any_carrier(headers, path):
    assert app_credential(headers, path) == KEY


def test_basic_authorization_is_no_client_key():
    assert app_credential({"authorization": "Basic dXNlcjpwYXNz"}, CHAT) is None


def test_the_clients_name_is_on_the_flow_record_and_the_plan():
    p = planner(f"clients: [{{name: ci, key: {KEY}}}]\n")
    plan = p.admitted(chat({"authorization": f"Bearer {KEY}"}), now=0)
    assert isinstance(plan, Forward) and plan.record.client == "ci" and plan.client.name == "ci"


def test_an_anonymous_caller_learns_nothing_about_routes():
    p = planner(f"clients: [{{name: ci, key: {KEY}}}]\n")
    unknown_model = AppRequest("POST", "api.anthropic.com", "/v1/messages", {}, b'{"model": "nope"}')
    refusal = p.admitted(unknown_model, now=0)
    assert isinstance(refusal, Refuse) and refusal.status == 401 and refusal.protocol == "anthropic"


def test_unrouted_requests_pass_through_for_anyone_allowed_to_reach_the_host():
    p = planner(f"clients: [{{name: ci, key: {KEY}}}]\n")
    plan = p.admitted(AppRequest("POST", "api.openai.com", CHAT, {"authorization": f"Bearer {KEY}"}, BODY), now=0)
    assert isinstance(plan, Forward)
    other = AppRequest("GET", "api.anthropic.com", "/v1/models", {"x-api-key": KEY}, b"")
    assert isinstance(p.admitted(other, now=0), (PassThrough, Refuse))


def test_without_clients_a_key_pin_is_honoured_only_from_this_machine():
    p = planner()
    assert isinstance(p.admitted(chat({"x-llmitm-key": "k1"}, local_listener=True), now=0), Forward)
    refusal = p.admitted(chat({"x-llmitm-key": "k1"}, local_listener=False), now=0)
    assert isinstance(refusal, Refuse) and refusal.status == 403
    assert isinstance(p.admitted(chat(local_listener=False), now=0), Forward)


def test_rate_windows_survive_a_config_reload():
    clients = f"clients: [{{name: ci, key: {KEY}, rpm: 1}}]\n"
    first = planner(clients)
    assert isinstance(first.admitted(chat({"x-api-key": KEY}), now=0), Forward)
    second = planner(clients)
    second.clients.inherit_usage(first.clients)
    refusal = second.admitted(chat({"x-api-key": KEY}), now=1)
    assert isinstance(refusal, Refuse) and refusal.status == 429 and 58 <= refusal.retry_after <= 60


def test_a_compressed_body_is_decoded_only_up_to_max_body_bytes():
    p = planner(max_body=4096)
    assert p.screen_body("POST", CHAT, gzip.compress(BODY), "gzip") == BODY
    assert p.screen_body("POST", CHAT, zlib.compress(BODY), "deflate") == BODY
    bomb = gzip.compress(b" " * 3_000_000)
    refusal = p.screen_body("POST", CHAT, bomb, "gzip")
    assert isinstance(refusal, Refuse) and refusal.status == 413 and len(bomb) < 4096 and "decompressed" in refusal.message


@pytest.mark.parametrize("encoding, status", [("gzip, gzip", 415), ("br", 415), ("zstd", 415), ("gzip", 400)])
def test_stacked_unsupported_or_corrupt_encodings_are_refused(encoding, status):
    refusal = planner().screen_body("POST", CHAT, b"\x1f\x8b not really gzip", encoding)
    assert isinstance(refusal, Refuse) and refusal.status == status


def test_a_truncated_gzip_body_is_refused():
    refusal = planner().screen_body("POST", CHAT, gzip.compress(BODY)[:-12], "gzip")
    assert isinstance(refusal, Refuse) and refusal.status == 400


def test_a_client_key_is_never_forwarded_on_a_route_without_a_pool():
    p = planner(f"clients: [{{name: ci, key: {KEY}}}, {{name: alice, proxy_user: alice}}]\n")
    own = AppRequest("POST", "api.openai.com", CHAT, {"authorization": f"Bearer {KEY}"}, b'{"model": "open-x"}')
    plan = p.admitted(own, now=0)
    assert isinstance(plan, Forward) and not plan.pooled and not plan.forward_app_credential
    provider_key = AppRequest("POST", "api.openai.com", CHAT, {"authorization": "Bearer sk-app-own-provider-key"},
                              b'{"model": "open-x"}', proxy_user="alice")
    plan = p.admitted(provider_key, now=0)
    assert isinstance(plan, Forward) and plan.record.client == "alice" and plan.forward_app_credential
