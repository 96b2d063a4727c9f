import pytest
from mitmproxy.test import taddons

from llmitm.inspect import view


@pytest.fixture
def llmitm_view():
    """The llmitm contentview registered with mitmproxy for one test, as the addon's `load` does,
    inside a mitmproxy context (12's contentview metadata reads ctx.options)."""
    with taddons.context():
        registered = view.register()
        yield registered
        view.unregister(registered)


@pytest.fixture
def upstream():
    """A fake provider on loopback replaying recorded traffic (tests/harness/upstream.py)."""
    from tests.harness.upstream import FakeUpstream

    with FakeUpstream() as up:
        yield up
