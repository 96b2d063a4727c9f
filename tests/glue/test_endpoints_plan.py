"""The endpoints beside generation get a deliberate answer in the app's own protocol: model lists and
info from the routes, token counts from the upstream's own counting endpoint (or an estimate marked as
one), embeddings translated between OpenAI and Gemini, and for anything else a refusal naming the
endpoint or a pass to the app's own provider — never a request of one protocol sent to a provider of
another. Planner only (no mitmproxy); the SDKs' own types check the shapes."""

from __future__ import annotations

import base64
import json
import struct

import anthropic.types
import openai.types
import pytest
from google.genai import types as genai_types
from openai.types.responses import InputTokenCountResponse

from llmitm.config import parse_config
from llmitm.plan import AppRequest, Forward, LocalAnswer, PassThrough, Planner, Refuse

BASE = "http://127.0.0.1:9"
OPENAI_SDK = {"authorization": "Bearer sk-app", "x-stainless-lang": "python", "content-type": "application/json"}
ANTHROPIC_SDK = {"x-api-key": "sk-app", "anthropic-version": "2023-06-01", "x-stainless-lang": "python"}
GENAI_SDK = {"x-goog-api-key": "AIza-app", "x-goog-api-client": "google-genai-sdk/2.34.0"}

CONFIG = parse_config(f"""
providers:
  claude: {{protocol: anthropic, base_url: "{BASE}", keys: ["sk-ant-pool-1"]}}
  gemini: {{protocol: gemini, base_url: "{BASE}/v1beta", keys: ["AIza-pool-1"]}}
  gpt: {{protocol: openai-chat, base_url: "{BASE}/v1", keys: ["sk-pool-1"]}}
  responses: {{protocol: openai-responses, base_url: "{BASE}/v1", keys: ["sk-pool-2"]}}
  openai-own: {{protocol: [openai-chat, openai-responses], base_url: "{BASE}"}}
routes:
  - {{match: {{host: api.openai.com, path: /v1/embeddings}}, provider: gemini, model: gemini-embedding-001}}
  - {{match: {{host: api.openai.com, path: /v1/responses/input_tokens}}, provider: claude, model: claude-sonnet-4-5}}
  - match: {{host: api.openai.com}}
    provider: claude
    model_map: {{"gpt-4o": claude-sonnet-4-5, "gpt-4o-mini": claude-haiku-4-5, "o*": claude-opus-4-1}}
  - {{match: {{host: api.anthropic.com, path: /v1/messages/count_tokens, model: "*-gemini"}}, provider: gemini,
     model: gemini-2.5-flash}}
  - {{match: {{host: api.anthropic.com, path: /v1/messages/count_tokens, model: "*-responses"}}, provider: responses,
     model: gpt-4.1}}
  - {{match: {{host: api.anthropic.com}}, provider: gpt, model: gpt-4o}}
  - {{match: {{host: generativelanguage.googleapis.com, path: "*mbed*"}}, provider: gpt, model: text-embedding-3-small}}
  - {{match: {{host: generativelanguage.googleapis.com, path: "*:countTokens"}}, provider: claude,
     model: claude-sonnet-4-5}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: claude, model: claude-sonnet-4-5,
     other_endpoints: original}}
  - {{match: {{host: llm.internal}}, provider: claude}}
  - {{match: {{host: openai-own.internal}}, provider: openai-own}}
""", "<endpoints test>")


@pytest.fixture(scope="module")
def planner():
    return Planner(CONFIG)


def get(host: str, path: str, headers: dict) -> AppRequest:
    return AppRequest("GET", host, path, headers)


def post(host: str, path: str, headers: dict, body: dict) -> AppRequest:
    return AppRequest("POST", host, path, headers, json.dumps(body).encode())


def answered(plan) -> dict:
    assert isinstance(plan, LocalAnswer) and plan.status == 200, plan
    return json.loads(plan.body)


# -- model list and model info ------------------------------------------------------------------

def test_openai_model_list_on_an_anthropic_route_names_the_routes_models_in_openais_shape(planner):
    page = answered(planner.plan(get("api.openai.com", "/v1/models", OPENAI_SDK)))
    models = [openai.types.Model.model_validate(m) for m in page["data"]]
    assert page["object"] == "list"
    # model_map keys that are not globs; not the model of a route that serves only one path (embeddings)
    assert [m.id for m in models] == ["gpt-4o", "gpt-4o-mini"] and {m.owned_by for m in models} == {"claude"}


def test_model_info_asks_the_upstreams_own_model_info_and_answers_with_the_name_asked_for():
    planner = Planner(CONFIG)
    plan = planner.plan(get("api.openai.com", "/v1/models/gpt-4o", OPENAI_SDK))
    assert isinstance(plan, Forward) and plan.pooled and plan.url == f"{BASE}/v1/models/claude-sonnet-4-5"
    assert plan.set_headers["anthropic-version"] and plan.body is None
    stated = {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
              "created_at": "2025-09-29T00:00:00Z", "max_input_tokens": 123456, "max_tokens": 4321}
    status, body = plan.translation.response(200, json.dumps(stated).encode())
    model = openai.types.Model.model_validate_json(body)
    assert status == 200 and (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "claude")
    glob_served = planner.plan(get("api.openai.com", "/v1/models/o3", OPENAI_SDK))
    assert isinstance(glob_served, Forward) and glob_served.url == f"{BASE}/v1/models/claude-opus-4-1"


def test_what_an_upstream_stated_about_a_model_is_reused_briefly():
    planner = Planner(CONFIG)
    first = planner.plan(get("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash", GENAI_SDK))
    assert isinstance(first, Forward) and first.url == f"{BASE}/v1/models/claude-sonnet-4-5"
    stated = {"type": "model", "id": "claude-sonnet-4-5", "display_name": "x", "created_at": "2025-09-29T00:00:00Z",
              "max_input_tokens": 123456, "max_tokens": 4321}
    _, body = first.translation.response(200, json.dumps(stated).encode())
    assert json.loads(body)["name"] == "models/gemini-2.5-flash" and json.loads(body)["inputTokenLimit"] == 123456
    again = answered(planner.plan(get("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash", GENAI_SDK)))
    assert (again["inputTokenLimit"], again["outputTokenLimit"]) == (123456, 4321)
    listing = answered(planner.plan(get("generativelanguage.googleapis.com", "/v1beta/models", GENAI_SDK)))
    assert listing["models"][0]["inputTokenLimit"] == 123456  # the list uses what the upstream said too
    planner.model_limits.clock = lambda: float("inf")  # the entry expired: ask again
    assert isinstance(planner.plan(get("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash", GENAI_SDK)), Forward)


def test_an_upstream_without_limits_in_its_model_info_falls_back_to_the_price_table():
    plan = Planner(CONFIG).plan(get("api.anthropic.com", "/v1/models/claude-x", ANTHROPIC_SDK))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1/models/gpt-4o" and "anthropic-version" in plan.drop_headers
    _, body = plan.translation.response(200, b'{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"}')
    info = anthropic.types.ModelInfo.model_validate_json(body)
    assert info.id == "claude-x" and (info.max_input_tokens, info.max_tokens) == (128000, 16384)


def test_an_upstreams_model_info_error_reaches_the_app_in_its_protocol():
    plan = Planner(CONFIG).plan(get("api.openai.com", "/v1/models/gpt-4o", OPENAI_SDK))
    status, body = plan.translation.response(
        404, b'{"type": "error", "error": {"type": "not_found_error", "message": "model: claude-sonnet-4-5"}}')
    assert status == 404 and json.loads(body)["error"]["message"] == "model: claude-sonnet-4-5"


def test_model_info_for_a_model_no_route_serves_is_a_404_in_the_apps_protocol(planner):
    plan = planner.plan(get("api.openai.com", "/v1/models/davinci", OPENAI_SDK))
    assert isinstance(plan, Refuse) and plan.status == 404 and plan.code == "model_not_found"
    assert json.loads(plan.body())["error"]["type"] == "not_found_error"


def test_anthropic_model_list_is_told_from_openais_by_its_header_and_carries_the_context_window(planner):
    page = answered(planner.plan(get("api.anthropic.com", "/v1/models", ANTHROPIC_SDK)))
    (info,) = [anthropic.types.ModelInfo.model_validate(m) for m in page["data"]]
    assert info.id == "gpt-4o" and info.type == "model"
    assert (info.max_input_tokens, info.max_tokens) == (128000, 16384)  # gpt-4o in the price table
    assert page["first_id"] == page["last_id"] == "gpt-4o" and page["has_more"] is False


def test_gemini_models_list_carries_names_and_token_limits(planner):
    # The REST shape google-genai converts into types.Model (end to end: test_endpoints_e2e.py).
    listing = answered(planner.plan(get("generativelanguage.googleapis.com", "/v1beta/models?pageSize=50", GENAI_SDK)))
    assert [m["name"] for m in listing["models"]] == ["models/claude-sonnet-4-5"]
    assert listing["models"][0]["inputTokenLimit"] == 200000



def test_an_unrestricted_route_of_the_apps_protocol_lists_the_upstreams_own_models(planner):
    plan = planner.plan(get("openai-own.internal", "/v1/models", OPENAI_SDK))
    assert isinstance(plan, Forward) and plan.translation is None and plan.url == f"{BASE}/v1/models"


def test_a_host_no_header_or_known_host_tells_is_taken_as_its_providers_protocol(planner):
    plan = planner.plan(get("llm.internal", "/v1/models", {"authorization": "Bearer x"}))
    assert isinstance(plan, Forward) and plan.client_protocol == "anthropic" and plan.translation is None


# -- token counting -----------------------------------------------------------------------------

COUNT_BODY = {"model": "claude-x-gemini", "system": "Be brief.", "messages": [{"role": "user", "content": "Hello"}],
              "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}


def test_anthropic_count_tokens_goes_to_geminis_count_tokens_exactly(planner):
    plan = planner.plan(post("api.anthropic.com", "/v1/messages/count_tokens", ANTHROPIC_SDK, COUNT_BODY))
    assert isinstance(plan, Forward) and plan.pooled
    assert plan.url == f"{BASE}/v1beta/models/gemini-2.5-flash:countTokens"
    sent = json.loads(plan.body)["generateContentRequest"]
    assert sent["model"] == "models/gemini-2.5-flash" and sent["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}] and "tools" in sent
    assert "anthropic-version" in plan.drop_headers
    status, body = plan.translation.response(200, b'{"totalTokens": 31, "promptTokensDetails": []}')
    assert status == 200 and anthropic.types.MessageTokensCount.model_validate_json(body).input_tokens == 31


def test_anthropic_count_tokens_goes_to_openai_responses_input_tokens(planner):
    plan = planner.plan(post("api.anthropic.com", "/v1/messages/count_tokens", ANTHROPIC_SDK,
                             {**COUNT_BODY, "model": "claude-x-responses"}))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1/responses/input_tokens"
    sent = json.loads(plan.body)
    assert sent["model"] == "gpt-4.1" and sent["instructions"] == "Be brief." and "store" not in sent
    status, body = plan.translation.response(200, b'{"object": "response.input_tokens", "input_tokens": 17}')
    assert json.loads(body) == {"input_tokens": 17}


def test_gemini_count_tokens_goes_to_anthropics_count_tokens(planner):
    path = "/v1beta/models/gemini-2.5-flash:countTokens"
    plan = planner.plan(post("generativelanguage.googleapis.com", path, GENAI_SDK,
                             {"contents": [{"role": "user", "parts": [{"text": "Hi there"}]}]}))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1/messages/count_tokens"
    sent = json.loads(plan.body)
    assert sent == {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]}
    assert plan.set_headers["anthropic-version"] and "x-goog-api-client" in plan.drop_headers
    status, body = plan.translation.response(200, b'{"input_tokens": 9}')
    assert genai_types.CountTokensResponse.model_validate_json(body).total_tokens == 9


def test_responses_input_tokens_goes_to_anthropics_count_tokens(planner):
    plan = planner.plan(post("api.openai.com", "/v1/responses/input_tokens", OPENAI_SDK,
                             {"model": "gpt-4o", "input": "Count me", "instructions": "Sys"}))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1/messages/count_tokens"
    assert json.loads(plan.body)["system"] in ("Sys", [{"type": "text", "text": "Sys"}])
    _, body = plan.translation.response(200, b'{"input_tokens": 12}')
    assert InputTokenCountResponse.model_validate_json(body).input_tokens == 12


def test_a_count_toward_an_upstream_that_cannot_count_is_an_estimate_marked_on_the_flow(planner):
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "y" * 400}]}
    plan = planner.plan(post("api.anthropic.com", "/v1/messages/count_tokens", ANTHROPIC_SDK, body))
    assert 100 <= answered(plan)["input_tokens"] <= 130
    assert "estimated locally" in plan.record.warnings[0] and "openai-chat has no counting endpoint" in plan.record.warnings[0]


def test_an_upstream_counting_error_reaches_the_app_in_its_protocol(planner):
    plan = planner.plan(post("api.anthropic.com", "/v1/messages/count_tokens", ANTHROPIC_SDK, COUNT_BODY))
    status, body = plan.translation.response(
        400, b'{"error": {"code": 400, "message": "bad contents", "status": "INVALID_ARGUMENT"}}')
    assert status == 400 and json.loads(body)["error"] == {"type": "invalid_request_error", "message": "bad contents"}


# -- embeddings ---------------------------------------------------------------------------------

def test_openai_embeddings_become_a_gemini_batch_and_come_back_as_the_sdks_base64(planner):
    plan = planner.plan(post("api.openai.com", "/v1/embeddings", OPENAI_SDK,
                             {"model": "text-embedding-3-small", "input": ["a", "bb"], "dimensions": 3,
                              "encoding_format": "base64"}))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1beta/models/gemini-embedding-001:batchEmbedContents"
    sent = json.loads(plan.body)["requests"]
    assert [r["content"]["parts"][0]["text"] for r in sent] == ["a", "bb"]
    assert {r["outputDimensionality"] for r in sent} == {3} and {r["model"] for r in sent} == {"models/gemini-embedding-001"}
    status, body = plan.translation.response(
        200, json.dumps({"embeddings": [{"values": [0.5, -1.0, 0.25]}, {"values": [1.0, 0.0, 2.0]}]}).encode())
    reply = json.loads(body)  # the openai SDK decodes base64 before it builds CreateEmbeddingResponse
    for row in reply["data"]:
        row["embedding"] = list(struct.unpack("<3f", base64.b64decode(row["embedding"])))
    parsed = openai.types.CreateEmbeddingResponse.model_validate(reply)
    assert [(d.index, d.embedding) for d in parsed.data] == [(0, [0.5, -1.0, 0.25]), (1, [1.0, 0.0, 2.0])]
    assert parsed.usage.prompt_tokens == 2 and "usage estimated" in plan.translation.warnings[-1]


def test_gemini_embed_content_becomes_an_openai_embeddings_request(planner):
    path = "/v1beta/models/gemini-embedding-001:embedContent"
    plan = planner.plan(post("generativelanguage.googleapis.com", path, GENAI_SDK,
                             {"content": {"parts": [{"text": "hello"}, {"text": "world"}]}, "taskType": "RETRIEVAL_QUERY",
                              "outputDimensionality": 2}))
    assert isinstance(plan, Forward) and plan.url == f"{BASE}/v1/embeddings"
    assert json.loads(plan.body) == {"model": "text-embedding-3-small", "input": ["hello\nworld"],
                                     "encoding_format": "float", "dimensions": 2}
    assert any("taskType RETRIEVAL_QUERY dropped" in w for w in plan.record.warnings)
    _, body = plan.translation.response(200, json.dumps({
        "object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 2, "total_tokens": 2},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}).encode())
    assert genai_types.EmbedContentResponse.model_validate({"embeddings": [json.loads(body)["embedding"]]})
    assert json.loads(body) == {"embedding": {"values": [0.1, 0.2]}}


def test_embeddings_toward_anthropic_are_a_400_that_names_the_route_to_add(planner):
    plan = planner.plan(post("api.anthropic.com", "/v1/embeddings", ANTHROPIC_SDK, {"model": "x", "input": "a"}))
    # api.anthropic.com has no embeddings path of its own: the OpenAI-shaped path on a host routed to
    # an OpenAI-compatible provider is the OpenAI API's (forwarded as it is).
    assert isinstance(plan, Forward) and plan.translation is None
    plan = planner.plan(post("llm.internal", "/v1/embeddings", OPENAI_SDK, {"model": "x", "input": "a"}))
    assert isinstance(plan, Refuse) and plan.status == 400 and plan.protocol == "openai-chat"
    assert "no embeddings API" in plan.message and "Add a route before it" in plan.message
    assert "path: \"/v1/embeddings\"" in plan.message


def test_token_ids_cannot_cross_to_another_providers_embeddings(planner):
    plan = planner.plan(post("api.openai.com", "/v1/embeddings", OPENAI_SDK, {"model": "m", "input": [[1, 2, 3]]}))
    assert isinstance(plan, Refuse) and plan.status == 400 and plan.param == "input"


# -- anything else ------------------------------------------------------------------------------

def test_a_vendor_path_on_a_translated_route_is_refused_in_the_apps_protocol_not_sent_with_a_pooled_key(planner):
    plan = planner.plan(get("api.anthropic.com", "/api/claude_code/settings", ANTHROPIC_SDK))
    assert isinstance(plan, Refuse) and plan.status == 404 and plan.protocol == "anthropic"
    assert "GET /api/claude_code/settings" in plan.message and "other_endpoints: original" in plan.message
    assert json.loads(plan.body())["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/files"), ("POST", "/v1/batches"),
                                              ("GET", "/v1/responses/resp_123"), ("POST", "/v1/fine_tuning/jobs")])
def test_openai_api_endpoints_an_anthropic_provider_lacks_are_refused(planner, method, path):
    plan = planner.plan(AppRequest(method, "api.openai.com", path, OPENAI_SDK, b"{}"))
    assert isinstance(plan, Refuse) and plan.status == 404 and plan.protocol == "openai-chat"
    assert f"{method} {path} is not served" in plan.message and plan.code == "endpoint_not_served"


def test_a_route_may_pass_other_endpoints_to_the_apps_own_provider(planner):
    plan = planner.plan(post("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:predict", GENAI_SDK, {}))
    assert isinstance(plan, PassThrough) and "app's own credential" in plan.record.warnings[0]
    files = planner.plan(get("generativelanguage.googleapis.com", "/v1beta/files", GENAI_SDK))
    assert isinstance(files, PassThrough)


def test_an_unknown_path_of_the_providers_own_protocol_is_still_forwarded(planner):
    plan = planner.plan(post("openai-own.internal", "/v1/files", OPENAI_SDK, {}))
    assert isinstance(plan, Forward) and plan.translation is None and plan.url == f"{BASE}/v1/files"
