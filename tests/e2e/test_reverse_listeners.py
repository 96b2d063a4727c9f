"""Base-URL listeners: apps that take a base URL reach llmitm with no proxy settings and no CA, and get
the same routing, translation and pooled keys as through the proxy."""

from __future__ import annotations

import pytest

from tests.harness.net import free_port
from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import Reply

pytestmark = pytest.mark.e2e

POOL_CLAUDE = "sk-ant-pool-reverse-0001"
POOL_OPENAI = "sk-pool-openai-reverse-0001"
PLACEHOLDER = "sk-app-placeholder-reverse"


@pytest.fixture(scope="module")
def listeners(tmp_path_factory, upstream):
    openai_port, anthropic_port = free_port(), free_port()
    config = f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "{upstream.url}", keys: ["{POOL_CLAUDE}"]}}
  compat: {{protocol: openai-chat, base_url: "{upstream.url}/v1", keys: ["{POOL_OPENAI}"]}}
routes:
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: api.anthropic.com}}, provider: compat, model: gpt-4o-mini}}
"""
    options = ["--reverse", f"openai={openai_port}", "--reverse", f"anthropic={anthropic_port}"]
    proxy = ProxyProcess(tmp_path_factory.mktemp("reverse"), config, options=options).start()
    yield proxy, f"http://127.0.0.1:{openai_port}/v1", f"http://127.0.0.1:{anthropic_port}"
    proxy.stop()


@pytest.fixture
def no_proxy_env(monkeypatch):
    """An environment with no proxy and no CA: only the base URL points at llmitm."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy",
                 "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_openai_sdk_with_a_base_url_reaches_a_translated_pooled_upstream(listeners, upstream, no_proxy_env):
    import openai

    _proxy, openai_base, _ = listeners
    client = openai.OpenAI(api_key=PLACEHOLDER, base_url=openai_base, max_retries=0)
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/text-basic.json")
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse")
    stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    assert [r.path for r in upstream.received] == ["/v1/messages", "/v1/messages"]
    assert {r.key for r in upstream.received} == {POOL_CLAUDE}
    assert upstream.received[0].json["model"] == "claude-sonnet-4-5"


def test_anthropic_sdk_with_a_base_url_streams_from_an_openai_compatible_upstream(listeners, upstream, no_proxy_env):
    import anthropic

    _proxy, _, anthropic_base = listeners
    client = anthropic.Anthropic(api_key=PLACEHOLDER, base_url=anthropic_base, max_retries=0)
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-text-weather.sse")
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        message = s.get_final_message()
    assert message.content and message.content[0].text
    assert upstream.received[-1].path == "/v1/chat/completions"
    assert upstream.received[-1].key == POOL_OPENAI and upstream.received[-1].json["model"] == "gpt-4o-mini"
