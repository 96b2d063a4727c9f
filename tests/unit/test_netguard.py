"""Which destinations the network guard treats as this host, and the start-up refusals of the CLI."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from llmitm import cli
from llmitm.netguard import is_local, judge, resolve

ip = ipaddress.ip_address


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "0.1.2.3", "::", "169.254.1.1",
                                     "fe80::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0"])
def test_loopback_unspecified_and_link_local_are_local(address):
    assert is_local(ip(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2001:db8::1", "10.255.255.254"])
def test_addresses_this_host_does_not_own_are_not_local(address):
    assert not is_local(ip(address))


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "LOCALHOST", "0", "::ffff:7f00:1"])
def test_every_spelling_resolves_to_loopback(spelling):
    addresses = asyncio.run(resolve(spelling, 80))
    assert addresses and all(is_local(a) for a in addresses)


def test_own_ports_are_refused_even_when_local_destinations_are_allowed():
    loopback = [ip("127.0.0.1")]
    assert not judge(loopback, 8081, own_ports={8081}, allow_local=True).allowed
    assert judge(loopback, 6000, own_ports={8081}, allow_local=True).allowed
    assert not judge(loopback, 6000, own_ports={8081}, allow_local=False).allowed
    assert judge([ip("93.184.216.34")], 8081, own_ports={8081}, allow_local=False).allowed


def _ns(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_an_open_listen_address_needs_client_auth_or_an_explicit_override():
    assert "proxyauth" in cli._unsafe_start(_ns("run", "--listen-host", "0.0.0.0"), web=False)
    assert cli._unsafe_start(_ns("run", "--listen-host", "0.0.0.0", "--allow-open-proxy"), web=False) is None
    assert cli._unsafe_start(_ns("run", "--listen-host", "0.0.0.0", "--", "--set", "proxyauth=@users.htpasswd"), web=False) is None
    assert cli._unsafe_start(_ns("run", "--listen-host", "::1"), web=False) is None


def test_mitmweb_without_authentication_needs_an_explicit_override():
    reason = cli._unsafe_start(_ns("web"), web=True)
    if cli._mitmweb_lacks_auth():
        assert reason is not None and "CVE-2025-23217" in reason
        assert cli._unsafe_start(_ns("web", "--allow-unauthenticated-web"), web=True) is None
    else:
        assert reason is None


def test_configured_clients_count_as_client_authentication():
    from llmitm.config import parse_config

    config = parse_config("clients: [{name: ci, key: '${CI_KEY}'}]\n", "llmitm.yaml", env={"CI_KEY": "ci-client-key-0001"})
    assert cli._unsafe_start(_ns("run", "--listen-host", "0.0.0.0"), web=False, config=config) is None


def test_base_url_listeners_and_local_capture_become_mitmproxy_modes():
    args = cli._proxy_args(_ns("run", "--reverse", "openai=4000", "--reverse", "https://my.host=4001", "--local", "node"))
    modes = [args[i + 1] for i, a in enumerate(args) if a == "--mode"]
    assert modes == ["regular", "reverse:https://api.openai.com@4000", "reverse:https://my.host@4001", "local:node"]


def test_local_capture_on_mitmproxy_11_is_refused_with_the_reason():
    reason = cli._unsafe_start(_ns("run", "--local", "node"), web=False)
    if cli._mitmweb_lacks_auth():
        assert reason is not None and "Python 3.12+" in reason
    else:
        assert reason is None
