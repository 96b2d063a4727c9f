"""Every registered spoke satisfies the contract in protocols/spoke.py: at run time (each member is
there and callable where it must be) and statically (mypy checks each package against the
`Codec` and `Wire` protocols where its registry record is built)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmitm.protocols import REGISTRY, SPOKES
from llmitm.protocols.canonical import Context
from llmitm.protocols.spoke import Codec, Endpoint, ErrorTypes, Wire

ADDONS = Path(__file__).resolve().parents[2] / "addons"
CALLABLE_CODEC = ["request_path", "parse_request", "render_request", "parse_response", "render_response", "parse_usage",
                  "parse_error", "render_error", "render_stream_error", "StreamParser", "StreamRenderer"]


def _members(protocol_class) -> list[str]:
    return [name for name in vars(protocol_class) if not name.startswith("_")]


def test_the_contract_lists_the_members_the_translator_calls():
    assert set(CALLABLE_CODEC) | {"NAME", "REQUEST_HEADERS"} == set(_members(Codec))


@pytest.mark.parametrize("spoke", list(REGISTRY), ids=REGISTRY.names)
def test_each_spoke_has_every_codec_member(spoke):
    missing = [name for name in _members(Codec) if not hasattr(spoke.codec, name)]
    assert missing == []
    assert [name for name in CALLABLE_CODEC if not callable(getattr(spoke.codec, name))] == []
    assert spoke.codec.NAME == spoke.name and SPOKES[spoke.name] is spoke.codec
    parser = spoke.codec.StreamParser(Context())
    renderer = spoke.codec.StreamRenderer(Context(), None)
    assert callable(parser.feed) and callable(renderer.render)


@pytest.mark.parametrize("spoke", list(REGISTRY), ids=REGISTRY.names)
def test_each_spoke_has_every_wire_fact(spoke):
    wire = spoke.wire
    assert [name for name in _members(Wire) if not hasattr(wire, name)] == []
    assert wire.NAME == spoke.name
    assert wire.HOSTS and all(isinstance(e, Endpoint) for e in wire.ENDPOINTS)
    assert any(e.kind == "generate" for e in wire.ENDPOINTS)
    assert any(not c.in_query for c in wire.CARRIERS)  # somewhere to write a pooled key
    assert isinstance(wire.ERROR_TYPES, ErrorTypes) and wire.PROBE_PATH.startswith("/")
    assert (wire.MODEL_FIELD is None) != (wire.path_with_model("/v1beta/models/a:generateContent", "b").endswith("/a:generateContent"))
    assert isinstance(wire.error_body(429, "slow down", wire.ERROR_TYPES.for_status(429), None, None), dict)


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy not installed")
def test_mypy_checks_every_spoke_against_the_contract():
    # The spokes' own bodies have a few type findings of their own; only the contract is asserted here:
    # the lines that build a SpokeRecord, and the contract and registry modules themselves.
    # Without PYTHONPATH: mypy would take llmitm for an installed package and keep its errors quiet.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
                          "--cache-dir", "/tmp/llmitm-mypy-cache", "llmitm/protocols/registry.py"],
                         cwd=ADDONS, env=env, capture_output=True, text=True).stdout
    lines = out.splitlines()
    contract = [line for line in lines if ": error:" in line and (
        "SpokeRecord" in line or "Codec" in line or '"Wire"' in line
        or line.startswith(("llmitm/protocols/spoke.py", "llmitm/protocols/registry.py")) or "/wire.py" in line.split(":")[0])]
    assert contract == [], out
