"""A translated request sheds the vendor headers of the app's protocol (they mean nothing, or
something else, to another vendor's API) but keeps the app's key for the credential swap."""

import json

import pytest

from llmitm.config import parse_config
from llmitm.plan import AppRequest, Forward, Planner
from llmitm.protocols import REGISTRY

CONFIG = parse_config(
    """
providers:
  claude: {protocol: anthropic, base_url: "https://api.anthropic.com"}
  openai: {protocol: [openai-chat, openai-responses], base_url: "https://api.openai.com"}
  gemini: {protocol: gemini, base_url: "https://generativelanguage.googleapis.com"}
  responses_only: {protocol: openai-responses, base_url: "https://api.openai.com"}
routes:
  - {match: {model: "gpt-5-responses"}, provider: responses_only}
  - {match: {model: "claude-*"}, provider: claude}
  - {match: {model: "gpt-*"}, provider: openai}
  - {match: {model: "gemini-*"}, provider: gemini}
""",
    "test",
)
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CHAT_BODY = {"messages": [{"role": "user", "content": "hi"}]}


def _translate(path: str, body: dict, headers: dict, model: str, client: str, upstream: str) -> dict[str, str]:
    """The headers the translated request goes upstream with (before the credential step)."""
    request = AppRequest("POST", "generativelanguage.googleapis.com", path, {k.lower(): v for k, v in headers.items()},
                         json.dumps(body).encode())
    plan = Planner(CONFIG).plan(request)
    assert isinstance(plan, Forward) and plan.translation is not None, plan
    assert (plan.client_protocol, plan.upstream_protocol) == (client, upstream)
    sent = {k: v for k, v in request.headers.items() if k not in {d.lower() for d in plan.drop_headers}}
    return {**sent, **{k.lower(): v for k, v in plan.set_headers.items()}}


def test_a_gemini_apps_goog_headers_are_stripped_toward_anthropic():
    headers = _translate("/v1beta/models/claude-sonnet-4-5:generateContent", GEMINI_BODY, {
        "x-goog-api-client": "google-genai-sdk/1.0 gl-python/3.12",
        "x-goog-user-project": "my-project",
        "x-goog-api-key": "AIza-app-key",
    }, "claude-sonnet-4-5", "gemini", "anthropic")
    assert "x-goog-api-client" not in headers and "x-goog-user-project" not in headers
    assert headers["x-goog-api-key"] == "AIza-app-key"  # taken and swapped by the credential step
    assert headers["anthropic-version"]


@pytest.mark.parametrize("upstream", ["openai-chat", "gemini"])
def test_an_anthropic_header_is_stripped_toward_another_vendor(upstream):
    model = "gpt-4o" if upstream == "openai-chat" else "gemini-2.5-flash"
    headers = _translate("/v1/messages", {"model": model, "max_tokens": 10, **CHAT_BODY},
                         {"anthropic-beta": "tools-2024", "anthropic-version": "2023-06-01"}, model, "anthropic", upstream)
    assert "anthropic-beta" not in headers and "anthropic-version" not in headers


def test_openai_headers_stay_between_the_two_openai_protocols():
    headers = _translate("/v1/chat/completions", {"model": "gpt-5-responses", **CHAT_BODY},
                         {"openai-organization": "org-1", "x-goog-user-project": "p"}, "gpt-5-responses", "openai-chat",
                         "openai-responses")
    assert headers["openai-organization"] == "org-1"
    assert "x-goog-user-project" not in headers


def test_every_protocol_names_its_vendor_prefixes():
    for spoke in REGISTRY:
        assert spoke.wire.VENDOR_HEADER_PREFIXES, spoke.name
