""""What changed since the previous request": the first position where a request's prompt prefix
departs from the earlier request of the same conversation, the place prompt caching breaks."""

from __future__ import annotations

import json

from llmitm.inspect import ConversationTracker
from llmitm.inspect.adapter import parse_request
from llmitm.inspect.prefix import extends, first_difference, snapshot
from tests.inspect.inspect_helpers import PATHS, flow_for, recorded_request, render

CHAT = PATHS["openai-chat"]


def chat(messages: list[dict]) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


def conversation() -> list[dict]:
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise the report dated 2026-12-01 for me."},
        {"role": "assistant", "content": "It says sales grew."},
        {"role": "user", "content": "By how much?"},
    ]


def send(tracker: ConversationTracker, body: bytes, credential: str = "Bearer sk-app-1"):
    flow = flow_for(CHAT, body)
    flow.request.headers["authorization"] = credential
    tracker.request(flow)
    return flow


def test_an_edited_early_message_is_named_with_its_position(llmitm_view):
    tracker = ConversationTracker()
    first = conversation()
    send(tracker, chat(first))
    second = conversation() + [{"role": "assistant", "content": "By 4%."}, {"role": "user", "content": "Thanks"}]
    second[1]["content"] = "Summarise the report dated 2026-12-02 for me."  # an app re-rendered its template
    flow = send(tracker, chat(second))
    _, text = render(flow, flow.request)
    assert "what changed since the previous request" in text
    offset = len("Summarise the report dated 2026-12-0")  # the system message is not in `messages`
    assert f"prefix differs at: message 0 (user), content part 0, character {offset}" in text
    assert "2026-12-01" in text and "2026-12-02" in text  # the excerpts around the change
    assert "the prompt cache cannot be reused from here on" in text


def test_a_conversation_that_only_grows_keeps_its_prefix(llmitm_view):
    tracker = ConversationTracker()
    first = send(tracker, chat(conversation()))
    flow = send(tracker, chat(conversation() + [{"role": "assistant", "content": "4%"}, {"role": "user", "content": "ok"}]))
    _, text = render(flow, flow.request)
    assert f"previous request: flow {first.id[:8]} (3 messages)" in text
    assert "prompt prefix unchanged" in text


def test_another_client_is_another_conversation(llmitm_view):
    tracker = ConversationTracker()
    send(tracker, chat(conversation()), credential="Bearer sk-app-1")
    flow = send(tracker, chat(conversation() + [{"role": "user", "content": "more"}]), credential="Bearer sk-app-2")
    _, text = render(flow, flow.request)
    assert "no earlier request of this conversation seen" in text
    assert "sk-app" not in json.dumps(flow.metadata["llmitm_inspect"])  # the credential is only digested


def test_memory_is_bounded():
    tracker = ConversationTracker(size=3)
    for i in range(10):
        send(tracker, chat([{"role": "user", "content": f"question {i}"}]))
    assert len(tracker.memory.recent) == 3


def test_tools_and_system_come_before_messages_in_cache_order():
    body = recorded_request()
    before = snapshot(parse_request("anthropic", json.dumps(body).encode(), CHAT).request)
    body["tools"][0]["description"] = "Look up the weather"
    after = snapshot(parse_request("anthropic", json.dumps(body).encode(), CHAT).request)
    difference = first_difference(before, after)
    assert difference is not None and difference.where == "tools"


def test_an_unrelated_conversation_does_not_count_as_an_extension():
    a = snapshot(parse_request("openai-chat", chat(conversation()), CHAT).request)
    other = [{"role": "user", "content": "Write a poem"}, {"role": "assistant", "content": "..."},
             {"role": "user", "content": "shorter"}, {"role": "user", "content": "again"}]
    b = snapshot(parse_request("openai-chat", chat(other), CHAT).request)
    assert extends(a, a) and not extends(a, b)


def test_tracking_runs_only_where_flows_are_kept_for_viewing():
    from mitmproxy.addons.view import View
    from mitmproxy.test import taddons

    dump = ConversationTracker()
    with taddons.context(dump):
        dump.running()  # mitmdump: nobody to show it to
    web = ConversationTracker()
    with taddons.context(View(), web):
        web.running()  # mitmweb / console
    assert (dump.active, web.active) == (False, True)
    flow = send(dump, chat(conversation()))
    assert "llmitm_inspect" not in flow.metadata
