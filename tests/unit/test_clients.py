"""Client identities: who may call, which models, providers and pins they may use, and how fast."""

from __future__ import annotations

from llmitm.clients import ClientRegistry, ClientSpec, fingerprint
from llmitm.config import parse_config

CI_KEY = "ci-client-key-0001"


def registry(**overrides) -> tuple[ClientRegistry, ClientSpec]:
    spec = ClientSpec("ci", key_sha256=fingerprint(CI_KEY), **overrides)
    return ClientRegistry([spec]), spec


def test_without_clients_anyone_is_admitted():
    assert ClientRegistry([]).admit(None, model="gpt-4o", provider="openai", pin=None, now=0) is None


def test_with_clients_an_unknown_or_missing_key_gets_401():
    clients, _ = registry()
    assert clients.identify("someone-else") is None
    refusal = clients.admit(clients.identify(None), model="gpt-4o", provider="openai", pin=None, now=0)
    assert refusal is not None and refusal.status == 401


def test_a_client_is_known_by_its_key_or_its_proxy_user():
    spec = ClientSpec("team", proxy_user="alice")
    clients = ClientRegistry([spec, ClientSpec("ci", key_sha256=fingerprint(CI_KEY))])
    assert clients.identify(CI_KEY).name == "ci"
    assert clients.identify(None, proxy_user="alice") is spec
    assert clients.identify(None, proxy_user="bob") is None


def test_models_providers_and_pins_outside_the_client_grant_get_403():
    clients, ci = registry(models=("gpt-4o-mini", "claude-*"), providers=("openai",), pins=("team-b",))
    assert clients.admit(ci, model="claude-sonnet-4-5", provider="openai", pin=None, now=0) is None
    assert clients.admit(ci, model="gpt-4o", provider="openai", pin=None, now=0).status == 403
    assert clients.admit(ci, model="gpt-4o-mini", provider="anthropic", pin=None, now=0).status == 403
    assert clients.admit(ci, model="gpt-4o-mini", provider="openai", pin="team-a", now=0).status == 403
    assert clients.admit(ci, model="gpt-4o-mini", provider="openai", pin="team-b", now=0) is None


def test_requests_per_minute_roll_over_with_retry_after():
    clients, ci = registry(rpm=2)
    assert clients.admit(ci, model=None, provider=None, pin=None, now=100.0) is None
    assert clients.admit(ci, model=None, provider=None, pin=None, now=110.0) is None
    refusal = clients.admit(ci, model=None, provider=None, pin=None, now=120.0)
    assert refusal.status == 429 and refusal.retry_after == 40.0
    assert clients.admit(ci, model=None, provider=None, pin=None, now=160.5) is None


def test_tokens_per_minute_count_answers():
    clients, ci = registry(tpm=1000)
    assert clients.admit(ci, model=None, provider=None, pin=None, now=0.0) is None
    clients.record_tokens(ci, 1200, now=1.0)
    refusal = clients.admit(ci, model=None, provider=None, pin=None, now=2.0)
    assert refusal.status == 429 and refusal.retry_after == 59.0
    assert clients.admit(ci, model=None, provider=None, pin=None, now=61.5) is None


def test_config_stores_a_key_only_as_its_hash():
    config = parse_config(f"clients:\n  - {{name: ci, key: '${{K}}'}}\n  - {{name: b, key_sha256: '{fingerprint('other-key-123')}'}}\n",
                          "llmitm.yaml", env={"K": CI_KEY})
    specs = [c.spec() for c in config.clients]
    assert specs[0].key_sha256 == fingerprint(CI_KEY) and CI_KEY not in repr(specs)
    assert ClientRegistry(specs).identify("other-key-123").name == "b"
