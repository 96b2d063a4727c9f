"""The planner decides what happens to a request without mitmproxy: answer here, pass through,
rewrite the model in place, or translate; and it refuses what it cannot read unambiguously."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmitm.config import parse_config
from llmitm.plan import AppRequest, Forward, LocalAnswer, PassThrough, Planner, Refuse, parse_json_object
from tests.glue.conftest import make_config

ADDONS = Path(__file__).resolve().parents[2] / "addons"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def planner():
    return Planner(make_config("http://127.0.0.1:9"))


def chat(body: bytes | dict, host: str = "api.openai.com", path: str = CHAT, **headers: str) -> AppRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return AppRequest("POST", host, path, headers, raw)


def test_planning_imports_nothing_from_mitmproxy():
    code = "import sys, llmitm.plan; print(any(m.split('.')[0] == 'mitmproxy' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(ADDONS)}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_same_protocol_rewrites_only_the_model_bytes(planner):
    body = b'{"model": "open-small",\n "messages": [], "x": [1.50, true]}'
    plan = planner.plan(chat(body))
    assert isinstance(plan, Forward) and plan.translation is None and not plan.pooled
    assert plan.body == body.replace(b'"open-small"', b'"served-model"')
    assert plan.url == "http://127.0.0.1:9/v1/chat/completions"


def test_an_escaped_model_key_is_rewritten_where_routing_read_it(planner):
    body = b'{"mod\\u0065l": "open-small", "messages": []}'
    plan = planner.plan(chat(body))
    assert isinstance(plan, Forward)
    assert json.loads(plan.body) == {"model": "served-model", "messages": []}


def test_duplicate_keys_are_refused_in_the_apps_protocol(planner):
    plan = planner.plan(chat(b'{"model": "open-a", "messages": [], "model": "claude-x"}'))
    assert isinstance(plan, Refuse) and plan.status == 400
    assert "duplicate key 'model'" in plan.message and json.loads(plan.body())["error"]["type"] == "invalid_request_error"


def test_a_utf16_body_is_refused(planner):
    plan = planner.plan(chat(json.dumps({"model": "open-a", "messages": []}).encode("utf-16")))
    assert isinstance(plan, Refuse) and plan.status == 400 and "not UTF-8" in plan.message


def test_json_nested_100k_deep_is_a_400_not_a_crash(planner):
    deep = b'{"model": "open-a", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    plan = planner.plan(chat(deep))
    assert isinstance(plan, Refuse) and plan.status == 400 and "nested too deeply" in plan.message


ANTHROPIC_ROUTES = parse_config("""
providers:
  claude: {protocol: anthropic, base_url: "http://127.0.0.1:9"}
  chat: {protocol: openai-chat, base_url: "http://127.0.0.1:9"}
routes:
  - {match: {host: api.anthropic.com, path: /v1/messages/count_tokens}, provider: chat, model: gpt-4o}
  - {match: {host: api.anthropic.com}, provider: claude, model: claude-sonnet-4-5}
""", "<plan test>")


def test_a_rewrite_without_a_model_string_is_refused_not_forwarded():
    plan = Planner(ANTHROPIC_ROUTES).plan(AppRequest("POST", "api.anthropic.com", "/v1/messages", {}, b'{"messages": []}'))
    assert isinstance(plan, Refuse) and plan.status == 400 and plan.param == "model"
    assert json.loads(plan.body())["error"]["type"] == "invalid_request_error"


def test_translation_plans_headers_and_body_for_the_upstream(planner):
    plan = planner.plan(chat({"model": "xlate-1", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                             **{"openai-beta": "x", "content-encoding": "gzip"}))
    assert isinstance(plan, Forward) and plan.translation is not None and plan.streams
    assert plan.upstream_path == "/v1/messages" and json.loads(plan.body)["model"] == "claude-x"
    assert "openai-beta" in plan.drop_headers and "content-encoding" in plan.drop_headers
    assert plan.set_headers["accept-encoding"] == "identity"


def test_a_request_the_upstream_cannot_express_is_refused_with_its_param(planner):
    plan = planner.plan(chat({"model": "xlate-1", "messages": [{"role": "user", "content": "hi"}], "n": 3}))
    assert isinstance(plan, Refuse) and 400 <= plan.status < 500


def test_unknown_endpoint_and_unmatched_host(planner):
    assert isinstance(planner.plan(AppRequest("GET", "api.openai.com", "/v1/models")), Forward)
    assert not planner.intercepts("example.com")
    unrouted = planner.plan(AppRequest("POST", "api.anthropic.com", "/v1/messages", {}, b'{"model": "c", "messages": []}'))
    assert isinstance(unrouted, PassThrough) and unrouted.record.provider is None


def test_count_tokens_on_a_translated_route_is_answered_here():
    body = json.dumps({"model": "claude-x", "messages": [{"role": "user", "content": "x" * 400}]}).encode()
    plan = Planner(ANTHROPIC_ROUTES).plan(AppRequest("POST", "api.anthropic.com", "/v1/messages/count_tokens", {}, body))
    assert isinstance(plan, LocalAnswer) and plan.status == 200
    assert json.loads(plan.body)["input_tokens"] >= 100 and "estimated locally" in plan.record.warnings[0]


def test_declared_oversized_bodies_are_refused_before_reading(planner):
    refusal = planner.screen_length("POST", "/v1/messages", str(64 << 20))
    assert isinstance(refusal, Refuse) and refusal.status == 413 and refusal.protocol == "anthropic"
    assert planner.screen_length("POST", CHAT, "100") is None


def test_strict_json_reader():
    assert parse_json_object(b"") == {}
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_json_object(b"[1]")
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        parse_json_object(b'{"x": {"a": 1, "a": 2}}')


def test_the_apps_query_key_never_becomes_part_of_the_upstream_url():
    config = parse_config("""
providers:
  g: {protocol: gemini, base_url: "http://127.0.0.1:9", keys: ["AIza-pool-1"]}
routes:
  - {match: {host: generativelanguage.googleapis.com}, provider: g, model: gemini-2.5-flash}
""", "<plan test>")
    path = "/v1beta/models/gemini-x:streamGenerateContent?alt=sse&key=AIza-app-own"
    plan = Planner(config).plan(AppRequest("POST", "generativelanguage.googleapis.com", path, {}, b'{"contents": []}'))
    assert isinstance(plan, Forward) and plan.streams
    assert plan.url == "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def test_a_route_can_refuse_hosted_tools_the_upstream_cannot_run_instead_of_dropping_them():
    from llmitm.config import parse_config
    from llmitm.plan import AppRequest, Forward, Planner, Refuse

    text = """
providers:
  compat: {protocol: openai-chat, base_url: "http://127.0.0.1:9/v1"}
routes:
  - {match: {model: strict-*}, provider: compat, unsupported_tools: refuse}
  - {provider: compat}
"""
    planner = Planner(parse_config(text, "t", env={}))

    def plan(model: str):
        body = {"model": model, "input": "hi", "tools": [{"type": "web_search"}]}
        return planner.plan(AppRequest("POST", "api.openai.com", "/v1/responses", {}, json.dumps(body).encode()))

    dropped = plan("gpt-4o")
    assert isinstance(dropped, Forward) and any("web_search" in w for w in dropped.record.warnings)
    refused = plan("strict-4o")
    assert isinstance(refused, Refuse) and refused.status == 400
