"""Which protocol and endpoint an app called, whether it asked for a stream, and how its model is
rewritten — each protocol's wire facts, asked through the registry."""

import pytest

from llmitm import endpoints
from llmitm.jsonbytes import replace_top_level_string
from llmitm.protocols import REGISTRY


@pytest.mark.parametrize(("method", "path", "protocol", "kind", "model"), [
    ("POST", "/v1/chat/completions", "openai-chat", "generate", None),
    ("POST", "/openai/v1/chat/completions?api-version=1", "openai-chat", "generate", None),
    ("POST", "/v1/responses", "openai-responses", "generate", None),
    ("POST", "/v1/messages?beta=true", "anthropic", "generate", None),
    ("POST", "/v1/messages/count_tokens", "anthropic", "count_tokens", None),
    ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", "gemini", "generate", "gemini-2.5-flash"),
    ("POST", "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini", "generate", "gemini-2.5-flash"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", "gemini", "count_tokens", "gemini-2.5-flash"),
    ("POST", "/v1beta/models/text-embedding-004:embedContent", "gemini", "embeddings", "text-embedding-004"),
    ("GET", "/v1beta/models/gemini-2.5-flash:generateContent", "gemini", "other", "gemini-2.5-flash"),
    ("GET", "/v1beta/models", "gemini", "list_models", None),
    ("GET", "/v1beta/models/gemini-2.5-flash", "gemini", "model_info", "gemini-2.5-flash"),
])
def test_each_protocol_claims_its_endpoints(method, path, protocol, kind, model):
    match = REGISTRY.classify(method, path)
    assert (match.protocol, match.endpoint.kind, match.model) == (protocol, kind, model)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/models"),  # OpenAI's, Anthropic's and Gemini v1's alike
    ("GET", "/v1/models/gpt-4o"),
    ("POST", "/v1/embeddings"),  # both OpenAI protocols'
    ("GET", "/v1/chat/completions"),
    ("POST", "/v1/projects/p/locations/l/publishers/google/models/g:generateContent"),  # Vertex: not yet
    ("POST", "/v1/unknown"),
])
def test_a_path_no_protocol_or_several_claim_is_unclassified(method, path):
    assert REGISTRY.classify(method, path) is None


def test_the_addons_view_of_an_endpoint():
    assert endpoints.classify("POST", "/v1/messages").translatable
    assert not endpoints.classify("POST", "/v1/messages/count_tokens").translatable
    assert not endpoints.classify("POST", "/v1beta/models/g:countTokens").translatable
    g = endpoints.classify("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert (g.protocol, g.model_in_path, g.stream_in_path) == ("gemini", "gemini-2.5-flash", True)


@pytest.mark.parametrize(("method", "path", "body", "streams"), [
    ("POST", "/v1/chat/completions", {"stream": True}, True),
    ("POST", "/v1/chat/completions", {"stream": "yes"}, False),
    ("POST", "/v1/responses", {"stream": False}, False),
    ("POST", "/v1/messages", {"stream": True}, True),
    ("POST", "/v1beta/models/g:streamGenerateContent", {}, True),  # a JSON array, but a stream
    ("POST", "/v1beta/models/g:generateContent", {"stream": True}, False),  # Gemini's body never says
    ("POST", "/v1/custom/path?alt=sse", None, True),  # an unclassified path: any protocol's way counts
    ("POST", "/v1/custom/path?alt=json", None, False),
])
def test_streaming_is_recognised_the_protocols_way(method, path, body, streams):
    endpoint = endpoints.classify(method, path)
    assert endpoints.asks_to_stream(endpoint, path, body) is streams


@pytest.mark.parametrize("protocol", ["openai-chat", "openai-responses", "anthropic"])
def test_a_body_model_is_rewritten_in_place(protocol):
    wire = REGISTRY.wire(protocol)
    assert wire.path_with_model("/v1/x", "other") == "/v1/x"
    body = b'{ "messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}],\n "model" : "gpt-4o", "n":1.0e0, "extra":{"model":"keep"}}'
    assert replace_top_level_string(body, wire.MODEL_FIELD, "other") == body.replace(b'"gpt-4o"', b'"other"')


def test_a_gemini_model_is_rewritten_in_the_path():
    wire = REGISTRY.wire("gemini")
    assert wire.MODEL_FIELD is None
    assert wire.path_with_model("/v1beta/models/a:generateContent?x=1", "b") == "/v1beta/models/b:generateContent?x=1"
    assert wire.path_with_model("/v1beta/models", "b") == "/v1beta/models"
