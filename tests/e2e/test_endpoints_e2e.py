"""The endpoints beside generation, as a legacy app calls them through a real mitmdump with the official
SDKs (openai, anthropic, google-genai), their hosts routed to providers of other protocols: model lists
and info in each SDK's own types, token counts from the upstream's counting endpoint (or an estimate),
embeddings between OpenAI and Gemini, and a deliberate answer for everything else. No request of one
protocol reaches a provider of another, and no pooled key leaves for a provider it does not belong to."""

from __future__ import annotations

import pytest

from tests.harness.proxy import module_proxy
from tests.harness.upstream import FAKE_DIMENSIONS, FAKE_MODEL_LIMITS, Reply, fake_token_count, fake_vector

KEY_CLAUDE, KEY_GEMINI, KEY_GPT, KEY_RESPONSES = "sk-ant-pool-e1", "AIza-pool-e2", "sk-pool-e3", "sk-pool-e4"


def config(upstream_url: str) -> str:
    return f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["{KEY_CLAUDE}"]}}
  gemini: {{protocol: gemini, base_url: "{upstream_url}", keys: ["{KEY_GEMINI}"]}}
  gpt: {{protocol: openai-chat, base_url: "{upstream_url}/v1", keys: ["{KEY_GPT}"]}}
  responses: {{protocol: openai-responses, base_url: "{upstream_url}/v1", keys: ["{KEY_RESPONSES}"]}}
routes:
  - {{match: {{host: api.openai.com, path: /v1/embeddings}}, provider: gemini, model: gemini-embedding-001}}
  - match: {{host: api.openai.com}}
    provider: claude
    model_map: {{"gpt-4o": claude-sonnet-4-5, "gpt-4o-mini": claude-haiku-4-5}}
  - {{match: {{host: api.anthropic.com, path: /v1/messages/count_tokens, model: "*-gemini"}}, provider: gemini,
     model: gemini-2.5-flash}}
  - {{match: {{host: api.anthropic.com, path: /v1/messages/count_tokens, model: "*-responses"}}, provider: responses,
     model: gpt-4.1}}
  - {{match: {{host: api.anthropic.com}}, provider: gpt, model: gpt-4o}}
  - {{match: {{host: generativelanguage.googleapis.com, path: "*mbed*"}}, provider: gpt, model: text-embedding-3-small}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: llm.internal}}, provider: claude}}
  # A Gemini app's own server on this host (the fake upstream): what Claude cannot serve goes there.
  - {{match: {{host: 127.0.0.1}}, provider: claude, model: claude-sonnet-4-5, other_endpoints: original}}
"""


proxy = module_proxy("endpoints", config)


def openai_client(proxy, base_url: str | None = None):
    return proxy.sdk_client("openai", "sk-app", base_url=base_url)


def anthropic_client(proxy):
    return proxy.sdk_client("anthropic", "sk-app")


def genai_client(proxy, client_env, base_url: str | None = None):
    from google import genai
    from google.genai import types

    client_env(proxy)
    options = types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)) if base_url else None
    return genai.Client(api_key="AIza-app-placeholder", http_options=options)


def only_own_keys(upstream) -> None:
    """Every request that reached a provider carried that provider's own pooled key, on its own API."""
    for req in upstream.received:
        if req.path.startswith("/v1beta/"):
            assert req.key == KEY_GEMINI
        elif req.path.startswith("/v1/messages") or "anthropic-version" in req.headers:
            assert req.key == KEY_CLAUDE and "anthropic-version" in req.headers
        elif req.path.startswith("/v1/responses"):
            assert req.key == KEY_RESPONSES
        else:
            assert req.path in ("/v1/embeddings", "/v1/models/gpt-4o") and req.key == KEY_GPT


# -- model list and model info ------------------------------------------------------------------

def test_openai_sdk_lists_and_retrieves_the_routes_models(proxy, upstream):
    client = openai_client(proxy)
    assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
    assert upstream.received == []  # the list is llmitm's: nothing went to the Anthropic provider
    model = client.models.retrieve("gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "claude")
    (req,) = upstream.received  # the info is the upstream's own, asked on its own API
    assert req.method == "GET" and req.path == "/v1/models/claude-sonnet-4-5"
    only_own_keys(upstream)


def test_anthropic_sdk_lists_models_in_its_own_types_with_the_context_window(proxy, upstream):
    client = anthropic_client(proxy)
    (info,) = list(client.models.list())
    assert (info.id, info.type, info.max_input_tokens, info.max_tokens) == ("gpt-4o", "model", 128000, 16384)
    one = client.models.retrieve("claude-sonnet-4-5")  # this route serves every name as gpt-4o
    assert (one.id, one.max_input_tokens) == ("claude-sonnet-4-5", 128000)  # OpenAI states no limits: the table's
    assert [r.path for r in upstream.received] == ["/v1/models/gpt-4o"]
    only_own_keys(upstream)


def test_google_genai_lists_and_gets_models_with_the_upstreams_limits(proxy, upstream, client_env):
    client = genai_client(proxy, client_env)
    names = [m.name for m in client.models.list()]
    assert names == ["models/claude-sonnet-4-5"]  # not the model of the route that serves only embeddings
    model = client.models.get(model="gemini-2.5-flash")
    assert model.name == "models/gemini-2.5-flash"
    assert (model.input_token_limit, model.output_token_limit) == FAKE_MODEL_LIMITS  # as Anthropic stated them
    again = client.models.get(model="gemini-2.5-flash")
    assert again.input_token_limit == FAKE_MODEL_LIMITS[0]
    # Asked once at most (kept briefly; another app's model info for the same upstream model counts too).
    assert [r.path for r in upstream.received] in ([], ["/v1/models/claude-sonnet-4-5"])
    only_own_keys(upstream)


# -- token counting -----------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "How many tokens is this?"}]


def test_anthropic_count_tokens_is_gemini_count_tokens_exactly(proxy, upstream):
    count = anthropic_client(proxy).messages.count_tokens(model="claude-x-gemini", system="Be brief.", messages=MESSAGES)
    (req,) = upstream.received
    assert req.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    inner = req.json["generateContentRequest"]
    assert count.input_tokens == fake_token_count([inner.get("systemInstruction"), inner["contents"], inner.get("tools")])
    only_own_keys(upstream)


def test_anthropic_count_tokens_is_openai_responses_input_tokens_exactly(proxy, upstream):
    count = anthropic_client(proxy).messages.count_tokens(model="claude-x-responses", messages=MESSAGES)
    (req,) = upstream.received
    assert req.path == "/v1/responses/input_tokens" and req.json["model"] == "gpt-4.1"
    assert count.input_tokens == fake_token_count([req.json.get("instructions"), req.json["input"], req.json.get("tools")])
    only_own_keys(upstream)


def test_anthropic_count_tokens_toward_openai_chat_is_an_estimate(proxy, upstream):
    count = anthropic_client(proxy).messages.count_tokens(model="claude-x", messages=MESSAGES)
    assert 5 < count.input_tokens < 100 and upstream.received == []


def test_google_genai_count_tokens_is_anthropic_count_tokens_exactly(proxy, upstream, client_env):
    client = genai_client(proxy, client_env)
    count = client.models.count_tokens(model="gemini-2.5-flash", contents="How many tokens is this?")
    (req,) = upstream.received
    assert req.path == "/v1/messages/count_tokens" and req.json["model"] == "claude-sonnet-4-5"
    assert count.total_tokens == fake_token_count([req.json.get("system"), req.json["messages"], req.json.get("tools")])
    only_own_keys(upstream)


def test_openai_responses_input_tokens_is_anthropic_count_tokens_exactly(proxy, upstream):
    count = openai_client(proxy).responses.input_tokens.count(model="gpt-4o", input="How many?", instructions="Sys")
    (req,) = upstream.received
    assert req.path == "/v1/messages/count_tokens" and req.json["model"] == "claude-sonnet-4-5"
    assert count.input_tokens == fake_token_count([req.json.get("system"), req.json["messages"], req.json.get("tools")])
    only_own_keys(upstream)


# -- embeddings ---------------------------------------------------------------------------------

def test_openai_sdk_embeddings_served_by_a_gemini_upstream(proxy, upstream):
    client = openai_client(proxy)
    reply = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "gamma"], dimensions=16)
    assert [len(d.embedding) for d in reply.data] == [16, 16, 16]
    assert reply.data[1].embedding == fake_vector("beta", 16)  # base64 float32 (the SDK's default), decoded
    (req,) = upstream.received
    assert req.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    one = client.embeddings.create(model="text-embedding-3-small", input="solo", encoding_format="float")
    assert len(one.data) == 1 and len(one.data[0].embedding) == FAKE_DIMENSIONS and one.usage.prompt_tokens > 0
    only_own_keys(upstream)


def test_google_genai_embeddings_served_by_an_openai_compatible_upstream(proxy, upstream, client_env):
    from google.genai import types

    client = genai_client(proxy, client_env)
    reply = client.models.embed_content(model="gemini-embedding-001", contents=["alpha", "beta"],
                                        config=types.EmbedContentConfig(output_dimensionality=4, task_type="RETRIEVAL_QUERY"))
    assert [e.values for e in reply.embeddings] == [fake_vector("alpha", 4), fake_vector("beta", 4)]
    (req,) = upstream.received
    assert req.path == "/v1/embeddings"
    assert req.json == {"model": "text-embedding-3-small", "input": ["alpha", "beta"], "encoding_format": "float", "dimensions": 4}
    only_own_keys(upstream)


def test_embeddings_on_a_route_to_anthropic_are_a_400_naming_the_route_to_add(proxy, upstream):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proxy, "https://llm.internal/v1").embeddings.create(model="text-embedding-3-small", input="x")
    assert "no embeddings API" in str(info.value) and "Add a route before it" in str(info.value)
    assert upstream.received == []


# -- anything else ------------------------------------------------------------------------------

def test_openai_files_on_an_anthropic_route_are_a_404_naming_the_endpoint(proxy, upstream):
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        openai_client(proxy).files.list()
    assert "GET /v1/files is not served" in str(info.value)
    assert upstream.received == []


def test_claude_codes_vendor_path_on_a_translated_route_is_a_404_not_a_pooled_call(proxy, upstream):
    import anthropic

    with pytest.raises(anthropic.NotFoundError) as info:
        anthropic_client(proxy).get("/api/claude_code/settings", cast_to=object)
    assert "GET /api/claude_code/settings is not served" in str(info.value)
    assert upstream.received == []


def test_other_endpoints_original_passes_them_to_the_apps_own_server_with_its_own_key(proxy, upstream, client_env):
    upstream.script = lambda req: Reply.json(200, {"files": [{"name": "files/abc", "mimeType": "text/plain"}]})
    client = genai_client(proxy, client_env, base_url=f"http://127.0.0.1:{upstream.port}")
    assert [f.name for f in client.files.list()] == ["files/abc"]
    (req,) = upstream.received
    bare = req.path.split("?", 1)[0]  # google-genai 2.x lists /v1beta/files, 3.x /v1/files
    assert bare.endswith("/files") and req.key == "AIza-app-placeholder"
    assert f"GET http://127.0.0.1:{upstream.port}{bare}" in proxy.log()  # through llmitm, not around it
