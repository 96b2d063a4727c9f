"""Entry point for `mitmdump -s addons/llmitm_addon.py --set llmitm_config=FILE`.

mitmproxy puts this file's folder on sys.path, so the llmitm package beside it imports without an
install; `llmitm run` loads this same file.

Order matters (hooks run in list order): the network guard judges every client-chosen destination
before anything else; the header deadline closes a client connection that is slow to send a request's
headers; the conversation tracker reads each request as the app sent it, before llmitm rewrites it;
the inspector counts what llmitm published once it has.
"""

from urllib.parse import urlsplit

from llmitm.addon import Llmitm
from llmitm.deadlines import HeaderDeadlines
from llmitm.inspect import ConversationTracker, Inspect
from llmitm.netguard import NetGuard

llmitm = Llmitm()


def _llmitm_targets() -> set[tuple[str, int]]:
    """Where llmitm itself sends traffic: each configured provider, and its own relay."""
    targets = {("127.0.0.1", llmitm.relay.port)}
    for provider in llmitm.config.providers.values():
        url = urlsplit(provider.base_url)
        if url.hostname:
            targets.add((url.hostname, url.port or (443 if url.scheme == "https" else 80)))
    return targets


addons = [
    NetGuard(
        intercepts=lambda host: llmitm.planner.intercepts(host),
        llmitm_targets=_llmitm_targets,
        extra_own_ports=lambda: [llmitm.relay.port, *llmitm.observer.ports()],
        allow_local=lambda: llmitm.config.allow_local_destinations,
    ),
    HeaderDeadlines(
        timeout=lambda: llmitm.config.header_timeout_seconds,
        intercepts=lambda host: llmitm.planner.intercepts(host),
    ),
    ConversationTracker(),
    llmitm,
    Inspect(),
]
