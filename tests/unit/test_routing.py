import re

import pytest

from llmitm.config import parse_config
from llmitm.exchange import upstream_url
from llmitm.routing import Router, UnknownModel

CFG = parse_config(
    """
providers:
  a: {protocol: anthropic, base_url: "http://127.0.0.1:1"}
  o: {protocol: openai-chat, base_url: "http://127.0.0.1:2/v1"}
routes:
  - {match: {host: api.openai.com, model: "claude-*"}, provider: a}
  - {match: {host: "*.openai.com"}, provider: o, model_map: {"gpt-4*": small, "o*": reasoning}}
  - {match: {path: "/v1/messages"}, provider: a, model: claude-haiku}
""",
    "t.yaml",
)


def test_first_matching_route_wins_and_maps_models():
    router = Router(CFG)
    assert router.select("api.openai.com", "/v1/chat/completions", "claude-3").provider_name == "a"
    d = router.select("API.OPENAI.COM", "/v1/chat/completions", "gpt-4o")
    assert (d.provider_name, d.upstream_model) == ("o", "small")
    with pytest.raises(UnknownModel, match=r"routes\.1\.model_map"):
        router.select("api.openai.com", "/v1/chat/completions", "text-davinci")


def test_route_without_host_applies_to_known_hosts_only():
    router = Router(CFG)
    assert router.select("api.anthropic.com", "/v1/messages?beta=true", "x").upstream_model == "claude-haiku"
    assert router.select("example.com", "/v1/messages", "x") is None
    assert router.intercepts("api.anthropic.com") and not router.intercepts("example.com")


def test_allow_hosts_patterns_match_host_and_port():
    patterns = Router(CFG).allow_hosts_patterns()
    assert any(re.search(p, "api.openai.com:443") for p in patterns)
    assert any(re.search(p, "eu.openai.com") for p in patterns)
    assert not any(re.search(p, "openai.com.evil.example:443") for p in patterns)


def test_upstream_url_keeps_a_base_url_path_without_doubling_the_version():
    assert upstream_url("http://h:1/v1", "/v1/chat/completions") == "http://h:1/v1/chat/completions"
    assert upstream_url("https://gw.example/openai", "/v1/chat/completions") == "https://gw.example/openai/v1/chat/completions"
