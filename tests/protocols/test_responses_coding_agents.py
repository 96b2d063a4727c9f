"""What Codex CLI (0.17x) sends on the Responses API (PROTOCOLS.md §6): a `namespace` tool holding
function tools (`multi_agent_v1`) and the hosted `web_search` tool. Both used to be a 400; now the
namespace's functions reach any upstream and their calls come back under the client's own names."""

from __future__ import annotations

import json

import pytest
from proto_helpers import FIXTURES

from llmitm.protocols import Translation, TranslationError

SPAWN = {"type": "function", "name": "spawn_agent", "description": "Start a sub-agent", "strict": False,
         "parameters": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}}
CODEX_TOOLS = [
    {"type": "function", "name": "shell", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}},
    {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents", "tools": [SPAWN]},
    {"type": "web_search", "external_web_access": True},
]
FLAT = "multi_agent_v1__spawn_agent"


def codex_request(input, stream: bool = False) -> dict:
    return {"model": "gpt-5.1-codex", "instructions": "You are Codex.", "input": input, "tools": CODEX_TOOLS,
            "tool_choice": "auto", "parallel_tool_calls": False, "store": False, "stream": stream,
            "include": ["reasoning.encrypted_content"]}


def recorded_call_of(name: str) -> bytes:
    """A recorded Anthropic tool_use turn whose tool is renamed to the namespaced function's upstream name."""
    body = json.loads((FIXTURES / "anthropic-messages/prism/thinking-text-tool-use.json").read_text())
    for block in body["content"]:
        if block["type"] == "tool_use":
            block["name"] = name
    return json.dumps(body).encode()


def test_codex_tools_reach_anthropic():
    up = json.loads(Translation("openai-responses", "anthropic").request(codex_request("hi")).body)
    assert [t["name"] for t in up["tools"]] == ["shell", FLAT, "web_search"]
    assert up["tools"][2] == {"type": "web_search_20250305", "name": "web_search"}
    assert up["tools"][1]["input_schema"] == SPAWN["parameters"]


def test_codex_tools_toward_openai_chat_drop_web_search_with_a_warning_or_refuse():
    t = Translation("openai-responses", "openai-chat")
    up = json.loads(t.request(codex_request("hi")).body)
    assert [x["function"]["name"] for x in up["tools"]] == ["shell", FLAT]
    assert "tools[2]: hosted web_search tool dropped (no equivalent on this upstream)" in t.warnings
    with pytest.raises(TranslationError) as e:
        Translation("openai-responses", "openai-chat", unsupported_tools="refuse").request(codex_request("hi"))
    assert e.value.status == 400 and e.value.param == "tools[2]"


@pytest.mark.parametrize("stream", [False, True])
def test_a_namespaced_call_comes_back_under_the_clients_names(stream):
    t = Translation("openai-responses", "anthropic")
    t.request(codex_request("spawn one", stream))
    status, body = t.response(200, recorded_call_of(FLAT), as_stream=stream)
    assert status == 200
    if stream:
        events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
        added = [e["item"] for e in events if e["type"] == "response.output_item.added"
                 and e["item"]["type"] == "function_call"]
        assert [(i["name"], i.get("namespace")) for i in added] == [("spawn_agent", "multi_agent_v1")]
        output = next(e for e in events if e["type"] == "response.completed")["response"]["output"]
    else:
        output = json.loads(body)["output"]
    calls = [i for i in output if i["type"] == "function_call"]
    assert [(c["name"], c.get("namespace")) for c in calls] == [("spawn_agent", "multi_agent_v1")]
    # Codex sends the call back in its history with the namespace: upstream sees the flat name again.
    history = [{"role": "user", "content": "spawn one"}, calls[0],
               {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "started"}]
    up = json.loads(Translation("openai-responses", "anthropic").request(codex_request(history)).body)
    uses = [b for m in up["messages"] for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
    assert [(u["name"], u["id"]) for u in uses] == [(FLAT, calls[0]["call_id"])]


def test_a_long_namespace_still_makes_a_valid_upstream_name():
    tools = [{"type": "namespace", "name": "mcp.server-with-a-very-long-name.example", "tools": [
        {**SPAWN, "name": "a_tool_with_an_even_longer_name_than_the_namespace_has"}]}]
    up = json.loads(Translation("openai-responses", "anthropic").request(
        {"model": "m", "input": "hi", "tools": tools, "store": False}).body)
    name = up["tools"][0]["name"]
    assert len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name)
