import pytest

from llmitm.config import ConfigError, builtin_default, parse_config
from llmitm.protocols import REGISTRY

GOOD = """
providers:
  openai:
    protocol: openai-chat
    base_url: https://api.openai.com
    keys: ["${K1}", {key: "${K2:-sk-default-two}", id: second, weight: 2}]
  local:
    protocol: [openai-chat]
    base_url: http://127.0.0.1:8000/v1
routes:
  - match: {host: api.openai.com, model: "gpt-4*"}
    provider: openai
    model: gpt-4o-mini
  - match: {host: api.anthropic.com}
    provider: local
    model_map: {"claude-*": smollm3}
"""


def test_valid_config_expands_env_and_normalises():
    cfg = parse_config(GOOD, "t.yaml", env={"K1": "sk-one-aaaaaaaa"})
    p = cfg.providers["openai"]
    assert p.protocol == ["openai-chat"]
    assert [k.key for k in p.keys] == ["sk-one-aaaaaaaa", "sk-default-two"]
    assert p.keys[1].id == "second" and p.keys[1].weight == 2
    assert cfg.providers["local"].base_url == "http://127.0.0.1:8000/v1"
    assert cfg.routes[1].upstream_model("claude-3-5-haiku") == "smollm3"
    assert cfg.routes[1].upstream_model("gpt-4") is None
    assert cfg.intercepted_hosts() == ["api.openai.com", "api.anthropic.com"]


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("providers: {p: {protocol: openai-chatt, base_url: 'http://x'}}", {}, r"providers\.p\.protocol\.0"),
        ("providers: {p: {protocol: openai-chat}}", {}, r"providers\.p\.base_url: Field required"),
        ("providers: {p: {protocol: anthropic, base_url: 'http://x', keys: ['${NOPE}']}}", {}, r"providers\.p\.keys\.0: environment variable \$\{NOPE\} is not set"),
        ("providers: {p: {protocol: anthropic, base_url: 'http://x'}\nroutes: [", {}, r"not valid YAML"),
        ("providers: {p: {protocol: anthropic, base_url: 'http://x'}}\nroutes: [{provider: q}]", {}, r"routes\.0\.provider: unknown provider 'q'"),
        ("providers: {p: {protocol: anthropic, base_url: 'ftp://x'}}", {}, r"providers\.p\.base_url: must be an http"),
        ("providers: {p: {protocol: anthropic, base_url: 'http://x', base-url: 1}}", {}, r"providers\.p\.base-url: Extra inputs"),
        ("providers: {p: {protocol: anthropic, base_url: 'http://x'}}\nroutes: [{provider: p, fallback: [z]}]", {}, r"routes\.0\.fallback\.0: unknown provider 'z'"),
        ("state: mysql://x", {}, r"state: must be"),
        ("- just\n- a list", {}, r"top level must be a mapping"),
    ],
)
def test_broken_configs_name_the_field(text, env, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        parse_config(text, "broken.yaml", env=env)
    assert str(info.value).startswith("broken.yaml")


def test_builtin_default_passes_known_hosts_through():
    cfg = builtin_default()
    assert set(cfg.intercepted_hosts()) == {"api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"}
    assert not any(p.pooled for p in cfg.providers.values())


def test_example_config_is_valid():
    from tests.harness.fixtures import REPO

    text = (REPO / "config" / "llmitm.example.yaml").read_text()
    cfg = parse_config(text, "llmitm.example.yaml", env={"OPENAI_KEY_1": "sk-example-1"})
    assert cfg.providers["openai"].keys[1].id == "team-b"
    assert cfg.routes[3].upstream_model("gpt-3.5-turbo") == "smollm3"
    assert cfg.routes[1].other_endpoints == "refuse" and cfg.routes[2].match.path == "/v1/embeddings"


def test_an_unknown_protocol_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        parse_config("providers: {p: {protocol: [anthropic, openai-chatt], base_url: 'http://x'}}", "f.yaml")
    message = str(e.value)
    assert message.startswith("f.yaml: providers.p.protocol.1: ") and "'openai-chatt'" in message
    assert all(repr(name) in message for name in REGISTRY.names)
