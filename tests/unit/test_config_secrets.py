"""A config error names the field and never prints a secret; `check` refuses what `run` would refuse."""

from __future__ import annotations

import pytest

from llmitm.config import ConfigError, parse_config

SECRET = "not-a-real-key-secret-value-0123"


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "llmitm.yaml", env=env or {})
    return str(e.value)


def test_a_key_of_the_wrong_shape_is_named_but_not_shown():
    message = error_of("providers:\n  oai: {protocol: openai-chat, base_url: 'https://x', keys: '${KEY}'}\n", {"KEY": SECRET})
    assert "providers.oai.keys" in message
    assert SECRET not in message and SECRET[:12] not in message


def test_a_literal_key_in_the_file_is_not_shown_either():
    message = error_of(f"providers:\n  oai: {{protocol: openai-chat, base_url: 'https://x', keys: [{{key: {SECRET}, weight: -1}}]}}\n")
    assert "providers.oai.keys.0.weight" in message and SECRET not in message


def test_a_header_value_is_not_shown():
    message = error_of(f"providers:\n  oai: {{protocol: openai-chat, base_url: 'https://x', headers: {{Helicone-Auth: [{SECRET}]}}}}\n")
    assert "providers.oai.headers" in message and SECRET not in message


def test_an_expanded_variable_elsewhere_is_shown_by_its_name():
    message = error_of("providers:\n  oai: {protocol: '${PROTO}', base_url: 'https://x'}\n", {"PROTO": SECRET})
    assert "${PROTO}" in message and SECRET not in message


def test_duplicate_key_ids_are_refused():
    message = error_of("providers:\n  oai:\n    protocol: openai-chat\n    base_url: https://x\n"
                       "    keys: [{key: a, id: team}, {key: b, id: team}]\n")
    assert "providers.oai.keys" in message and "team" in message and "unique" in message


def test_a_state_file_in_a_missing_folder_is_refused(tmp_path):
    message = error_of(f"state: sqlite:///{tmp_path}/missing/state.db\n")
    assert "state" in message and "does not exist" in message
    parse_config(f"state: sqlite:///{tmp_path}/state.db\n", "llmitm.yaml", env={})
