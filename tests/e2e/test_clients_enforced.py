"""Client identities are enforced through a real mitmdump: with `clients:` configured, only a known
client key (in whichever carrier its SDK uses) or a known proxy user spends the pool; strangers get a
401, grants are held with a 403, rates with a 429 and Retry-After — each in the app's own protocol —
and the client key never reaches the provider."""

from __future__ import annotations

import json
import subprocess

import anthropic
import httpx
import openai
import pytest

from tests.harness.proxy import module_proxy

pytestmark = pytest.mark.e2e

POOLED = "sk-pooled-clients-0000000001"
APP_KEY = "llmitm-client-app-000000001"
NARROW_KEY = "llmitm-client-narrow-0000001"
SLOW_KEY = "llmitm-client-slow-00000001"
THRIFTY_KEY = "llmitm-client-thrifty-0000001"


def config(upstream_url: str) -> str:
    return f"""
state: memory
providers:
  openai: {{protocol: openai-chat, base_url: "{upstream_url}", keys: [{{id: main, key: {POOLED}}}]}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["sk-ant-clients-0001"]}}
  gemini: {{protocol: gemini, base_url: "{upstream_url}", keys: ["AIza-clients-000001"]}}
  unpooled: {{protocol: openai-chat, base_url: "{upstream_url}"}}
routes:
  - {{match: {{host: api.openai.com, model: "own-*"}}, provider: unpooled}}
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: gemini}}
clients:
  - {{name: app, key: {APP_KEY}, pins: [main]}}
  - {{name: narrow, key: {NARROW_KEY}, models: ["gpt-4o-mini"], providers: [openai]}}
  - {{name: slow, key: {SLOW_KEY}, rpm: 2}}
  - {{name: thrifty, key: {THRIFTY_KEY}, tpm: 5}}
  - {{name: team, proxy_user: alice}}
"""


proxy = module_proxy("clients", config, ["--set", "proxyauth=any"])


def as_user(proxy, user: str) -> str:
    """The proxy's URL with Basic proxy credentials (proxyauth=any takes any user, but needs one)."""
    return proxy.url.replace("http://", f"http://{user}:pw@")


def post(proxy, url: str, body: dict, headers: dict[str, str], user: str = "anon") -> httpx.Response:
    return httpx.post(url, json=body, headers=headers, proxy=as_user(proxy, user), verify=str(proxy.ca), timeout=30)


def sdk_http(proxy, sdk) -> httpx.Client:
    """The SDK's own HTTP client class (newer SDKs ship their own httpx fork) through the proxy."""
    return sdk.DefaultHttpxClient(proxy=as_user(proxy, "anon"), verify=str(proxy.ca))


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"


def test_a_known_client_key_is_served_with_the_pooled_key_and_never_forwarded(proxy, upstream):
    client = openai.OpenAI(api_key=APP_KEY, max_retries=0, http_client=sdk_http(proxy, openai))
    reply = client.chat.completions.create(**CHAT)
    assert reply.choices[0].message.content
    sent = upstream.received[-1]
    assert sent.key == POOLED and APP_KEY not in json.dumps(sent.headers)


def test_the_anthropic_sdk_and_a_gemini_query_key_identify_the_client_too(proxy, upstream):
    client = anthropic.Anthropic(api_key=APP_KEY, max_retries=0,
                                 http_client=sdk_http(proxy, anthropic))
    assert client.messages.create(**MESSAGES).content
    r = post(proxy, f"{GEMINI_URL}?key={APP_KEY}", GEMINI, {})
    assert r.status_code == 200 and r.json()["candidates"]
    assert APP_KEY not in upstream.received[-1].path and upstream.received[-1].key == "AIza-clients-000001"


def test_an_unknown_or_missing_key_is_a_401_in_each_protocol(proxy, upstream):
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, {"authorization": "Bearer sk-someone-else-000"})
    assert r.status_code == 401 and r.json()["error"]["message"].startswith("llmitm:")
    r = post(proxy, "https://api.anthropic.com/v1/messages", MESSAGES, {})
    assert r.status_code == 401 and r.json()["type"] == "error" and r.json()["error"]["type"] == "authentication_error"
    r = post(proxy, GEMINI_URL, GEMINI, {"x-goog-api-key": "AIza-someone-else"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert upstream.received == []


def test_a_proxy_user_is_a_client_without_any_api_key(proxy, upstream):
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, {}, user="alice")
    assert r.status_code == 200 and upstream.received[-1].key == POOLED
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, {}, user="bob")
    assert r.status_code == 401


def test_models_providers_and_key_pins_outside_a_grant_are_403(proxy, upstream):
    narrow = {"authorization": f"Bearer {NARROW_KEY}"}
    assert post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, narrow).status_code == 200
    r = post(proxy, "https://api.openai.com/v1/chat/completions", {**CHAT, "model": "gpt-4o"}, narrow)
    assert r.status_code == 403 and "gpt-4o" in r.json()["error"]["message"]
    r = post(proxy, "https://api.anthropic.com/v1/messages", MESSAGES, {"x-api-key": NARROW_KEY})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, {**narrow, "x-llmitm-key": "main"})
    assert r.status_code == 403 and "x-llmitm-key" in r.json()["error"]["message"]
    count = len(upstream.received)
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, {"authorization": f"Bearer {APP_KEY}", "x-llmitm-key": "main"})
    assert r.status_code == 200 and len(upstream.received) == count + 1


def test_a_client_over_its_request_rate_gets_429_with_retry_after(proxy, upstream):
    slow = {"x-api-key": SLOW_KEY}
    assert [post(proxy, "https://api.anthropic.com/v1/messages", MESSAGES, slow).status_code for _ in range(2)] == [200, 200]
    r = post(proxy, "https://api.anthropic.com/v1/messages", MESSAGES, slow)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_a_client_over_its_token_rate_gets_429_after_the_answer_that_spent_them(proxy, upstream):
    thrifty = {"authorization": f"Bearer {THRIFTY_KEY}"}
    first = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, thrifty)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] > 5
    r = post(proxy, "https://api.openai.com/v1/chat/completions", CHAT, thrifty)
    assert r.status_code == 429 and "tokens per minute" in r.json()["error"]["message"] and r.headers["retry-after"]


def test_curl_with_a_client_key(proxy, upstream):
    out = subprocess.run(
        ["curl", "-sS", "--proxy", as_user(proxy, "anon"), "--cacert", str(proxy.ca), "https://api.openai.com/v1/chat/completions",
         "-H", f"Authorization: Bearer {APP_KEY}", "-H", "content-type: application/json", "-d", json.dumps(CHAT),
         "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "200" and json.loads(body)["choices"]


def test_a_client_key_never_reaches_a_provider_without_a_pool(proxy, upstream):
    own = {**CHAT, "model": "own-model"}
    assert post(proxy, "https://api.openai.com/v1/chat/completions", own, {"authorization": f"Bearer {APP_KEY}"}).status_code == 200
    assert upstream.received[-1].key is None
    r = post(proxy, "https://api.openai.com/v1/chat/completions", own, {"authorization": "Bearer sk-alices-own-key-01"},
             user="alice")
    assert r.status_code == 200 and upstream.received[-1].key == "sk-alices-own-key-01"
