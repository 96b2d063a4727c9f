"""In-process tests of the mitmproxy glue: hooks driven through `mitmproxy.test.taddons`/`tflow`,
the relay against the loopback fake provider (tests/harness/upstream.py, recorded wire data)."""

from __future__ import annotations

import contextlib
import json

import pytest
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons

from llmitm.addon import Llmitm
from llmitm.config import parse_config
from llmitm.provider_pools import PoolRegistry
from tests.harness.upstream import FakeUpstream

KEYS = ["sk-glue-a-00000001", "sk-glue-b-00000002"]


@pytest.fixture(scope="module")
def upstream_server():
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def upstream(upstream_server):
    upstream_server.reset()
    return upstream_server


def config_text(base_url: str, *, keys=KEYS, extra_provider: str = "", idle: float = 120.0, max_response: int = 64 << 20) -> str:
    return f"""
state: memory
max_response_bytes: {max_response}
providers:
  openai: {{protocol: openai-chat, base_url: "{base_url}", keys: {json.dumps(keys)}, strategy: round-robin,
            idle_timeout_seconds: {idle}, max_wait_seconds: 0,
            cooldown: {{probe_interval_seconds: 0.01}}, headers: {{Helicone-Auth: "Bearer sk-helicone-secret-1"}}}}
  claude: {{protocol: anthropic, base_url: "{base_url}", keys: ["sk-ant-glue-1"], max_wait_seconds: 0}}
  open: {{protocol: openai-chat, base_url: "{base_url}"}}
  openclaude: {{protocol: anthropic, base_url: "{base_url}"}}
{extra_provider}
routes:
  - {{match: {{host: api.openai.com, model: "claude-*"}}, provider: claude, model: claude-sonnet-4-5}}
  - {{match: {{host: api.openai.com, model: "open-*"}}, provider: open, model: served-model}}
  - {{match: {{host: api.openai.com, model: "xlate-*"}}, provider: openclaude, model: claude-x}}
  - {{match: {{host: api.openai.com}}, provider: openai}}
"""


def make_config(base_url: str, **kw):
    return parse_config(config_text(base_url, **kw), "<glue test>")


def pools_for(config) -> PoolRegistry:
    pools = PoolRegistry()
    pools.apply(config)
    return pools


@contextlib.contextmanager
def loaded_addon(tmp_path, base_url: str = "http://127.0.0.1:9"):
    """llmitm's addon loaded in mitmproxy's test context with `config_text(base_url)`, as mitmproxy tests
    its own addons (taddons); nothing listens at the default base URL."""
    path = tmp_path / "llmitm.yaml"
    path.write_text(config_text(base_url))
    addon = Llmitm()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, llmitm_config=str(path))
        yield addon
