"""What the flow list shows for an AI flow: one marker per flow, the most urgent first, and a comment
that tells the route, provider/model, key id (masked), attempts, timing and tokens, never a key."""

from __future__ import annotations

from mitmproxy.test import tflow, tutils

from llmitm import flowinfo
from llmitm.flowinfo import FlowRecord

POOLED_KEY = "sk-live-secret-abcdefghijklmnop"


def served(**changes) -> FlowRecord:
    record = FlowRecord(client_protocol="openai-chat", route=1, provider="claude", upstream_protocol="anthropic",
                        model="gpt-4o", upstream_model="claude-sonnet-4-5", credential="pooled", key_id="b2c3",
                        key_masked="sk-…mnop", translated=True, usage={"input": 120, "cached": 100, "output": 7})
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def timed_flow(status: int = 200):
    flow = tflow.tflow(resp=tutils.tresp(status_code=status))
    flow.request.timestamp_start, flow.request.timestamp_end = 100.0, 100.01
    flow.response.timestamp_start, flow.response.timestamp_end = 100.25, 101.0
    return flow


def test_errors_retries_and_warnings_get_distinct_marks_the_most_urgent_first():
    retried = ["claude/a1f0: 429, retried", "claude/b2c3: 200 in 0.41s"]
    assert flowinfo.mark_for(served(), 200) == ""
    assert flowinfo.mark_for(served(warnings=["seed dropped (Anthropic has no seed)"]), 200) == flowinfo.WARNING_MARK
    assert flowinfo.mark_for(served(attempts=retried, warnings=["w"]), 200) == flowinfo.RETRY_MARK
    assert flowinfo.mark_for(served(attempts=retried), 502) == flowinfo.ERROR_MARK
    assert flowinfo.mark_for(served(error="client disconnected"), None) == flowinfo.ERROR_MARK
    assert len({flowinfo.WARNING_MARK, flowinfo.RETRY_MARK, flowinfo.ERROR_MARK}) == 3


def test_the_comment_tells_the_story_and_never_the_key():
    flow = timed_flow()
    flowinfo.publish(flow, served(attempts=["claude/a1f0: 429, retried", "claude/b2c3: 200 in 0.41s"]))
    assert flow.comment.splitlines() == [
        "llmitm: route #1 → claude/claude-sonnet-4-5 (app asked for gpt-4o) (anthropic), translated from openai-chat",
        "key b2c3 sk-…mnop",
        "2 attempts: claude/a1f0: 429, retried → claude/b2c3: 200 in 0.41s",
        "TTFT 240 ms (first byte), total 1,000 ms",
        "tokens: 120 in (100 cached), 7 out",
    ]
    assert flow.marked == flowinfo.RETRY_MARK and POOLED_KEY not in str(flow.get_state())


def test_a_mark_set_by_someone_else_is_kept():
    flow = timed_flow()
    flow.marked = ":bug:"  # llmitm's guard marks its own bugs; a person may mark a flow by hand
    flowinfo.publish(flow, served(warnings=["seed dropped"]))
    assert flow.marked == ":bug:"
