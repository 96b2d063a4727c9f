"""Fixtures for end-to-end tests: one fake upstream and one real llmitm per test module."""

from __future__ import annotations

import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import FakeUpstream


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as up:
        yield up


@pytest.fixture(autouse=True)
def _fresh_upstream(request):
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture
def client_env(monkeypatch):
    """Point this process's HTTP clients at a proxy the way `llmitm env` tells a user to."""

    def apply(proxy: ProxyProcess) -> None:
        for name, value in proxy.client_env().items():
            monkeypatch.setenv(name, value)
        for name in ("ALL_PROXY", "all_proxy", "no_proxy", "https_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)

    return apply


def start_proxy(tmp_path_factory, config: str | None, name: str, extra: list[str] = ()) -> ProxyProcess:
    return ProxyProcess(tmp_path_factory.mktemp(name), config, extra=list(extra)).start()
