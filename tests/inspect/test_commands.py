"""`llmitm.stats` and `llmitm.keys` from mitmproxy's command bar: counts from what llmitm published
on each flow, and keys only ever masked."""

from __future__ import annotations

from mitmproxy.test import taddons

from llmitm import flowinfo
from llmitm.addon import Llmitm
from llmitm.inspect import Inspect
from tests.inspect.inspect_helpers import PATHS, flow_for

POOLED = "sk-ant-pooled-secret-0042"


def served(latency: float, status: int = 200, key_id: str = "claude#1", usage=(100, 40, 7)):
    flow = flow_for(PATHS["openai-chat"], b"{}", b"{}", status=status)
    flow.request.timestamp_start = 10.0
    flow.response.timestamp_end = 10.0 + latency
    record = flowinfo.FlowRecord(client_protocol="openai-chat", route=0, provider="claude", upstream_protocol="anthropic",
                                 model="gpt-4o", upstream_model="claude-sonnet-4-5", credential="pooled", key_id=key_id,
                                 key_masked="sk-ant-…0042", translated=True,
                                 usage={"input": usage[0], "cached": usage[1], "output": usage[2]})
    flowinfo.publish(flow, record)
    return flow


def test_stats_per_route_provider_and_key():
    inspect = Inspect()
    with taddons.context(inspect) as tctx:
        for latency in (0.1, 0.2, 0.3, 0.4):
            inspect.response(served(latency))
        inspect.response(served(2.0, status=429, key_id="claude#2", usage=(0, 0, 0)))
        lines = tctx.master.commands.call("llmitm.stats")
    table = "\n".join(lines)
    route = next(line for line in lines if line.startswith("#0 → claude (anthropic)"))
    assert route.split()[4:10] == ["5", "1", "400", "160", "28", "300ms"]  # reqs, errors, in, cached, out, p50
    assert route.split()[10:12] == ["2000ms", "2000ms"]  # p95, max
    assert any(line.startswith("claude#1 sk-ant-…0042") and line.split()[2] == "4" for line in lines)
    assert any(line.startswith("claude#2") and line.split()[3] == "1" for line in lines)
    assert "BY PROVIDER" in table and "BY KEY" in table


def test_stats_before_any_flow():
    inspect = Inspect()
    with taddons.context(inspect) as tctx:
        assert tctx.master.commands.call("llmitm.stats") == ["llmitm.stats: no AI flows seen yet"]


def test_keys_are_listed_masked(tmp_path):
    config = tmp_path / "llmitm.yaml"
    config.write_text(f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "http://127.0.0.1:9", keys: ["{POOLED}"]}}
routes:
  - {{match: {{host: api.openai.com}}, provider: claude}}
""")
    llmitm, inspect = Llmitm(), Inspect()
    with taddons.context(llmitm, inspect) as tctx:
        tctx.configure(llmitm, llmitm_config=str(config))
        lines = tctx.master.commands.call("llmitm.keys")
    table = "\n".join(lines)
    assert "claude" in table and "0042" in table
    assert POOLED not in table
