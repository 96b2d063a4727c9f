"""Tool loops across the Gemini spoke, driven by the official SDKs: what the client got back is sent
again as history and must reach the upstream in the form it requires (function names for Gemini's
functionResponse, Gemini 3 thought signatures restored from the tool-call ids, Anthropic signed thinking
restored from the thought part a Gemini client kept)."""

from __future__ import annotations

import json

import httpx
from google import genai
from google.genai import types as gtypes
from proto_helpers import FIXTURES, split, wire_bytes
from sdk_clients import translating_client

from llmitm.protocols import Translation, gemini

USER_TURN = [{"role": "user", "content": "weather?"}]
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
         for n in ("weather", "search_games", "get_weather")]


def _gemini_calls(rel: str) -> list[dict]:
    """The functionCall parts (with their signatures) of a Gemini recording, read from its JSON."""
    if rel.endswith(".json"):
        payloads = [json.loads((FIXTURES / rel).read_bytes())]
    else:
        payloads = [json.loads(line[5:]) for line in wire_bytes(rel).decode().splitlines() if line.startswith("data:")]
    return [p for body in payloads for c in body.get("candidates") or []
            for p in c["content"].get("parts") or [] if (p.get("functionCall") or {}).get("name")]


def _next_gemini_request(client: str, history: list, tools) -> dict:
    t = Translation(client, "gemini")
    body = {"model": "m", "messages": history, "max_tokens": 500}
    if client == "openai-chat":
        body["tools"] = tools
    else:
        body["tools"] = [{"name": x["function"]["name"], "input_schema": {"type": "object"}} for x in tools]
    return json.loads(t.request(body, upstream_model="gemini-3-pro-preview").body)


def _check_calls_restored(rel: str, g: dict):
    calls = _gemini_calls(rel)
    model, results = g["contents"][1], g["contents"][2]
    assert model["role"] == "model" and results["role"] == "user"
    sent = [p for p in model["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in sent] == [c["functionCall"]["name"] for c in calls]
    for p, c in zip(sent, calls, strict=True):
        assert p["functionCall"]["args"] == c["functionCall"].get("args", p["functionCall"]["args"])
    assert all("id" not in p["functionCall"] for p in sent)  # Gemini gave no ids: the synthesized ones stay here
    # The signature goes back exactly where Gemini put it (only the first of parallel calls has one);
    # a turn without any gets the documented placeholder on its first call.
    want = [c.get("thoughtSignature") for c in calls]
    if not any(want):
        want[0] = gemini.DUMMY_SIGNATURE
    assert [p.get("thoughtSignature") for p in sent] == want
    assert [p["functionResponse"]["name"] for p in results["parts"]] == [c["functionCall"]["name"] for c in calls]
    assert all("id" not in p["functionResponse"] for p in results["parts"])


def test_openai_client_tool_loop_keeps_gemini_signatures():
    for rel in ("gemini/vercel-ai/google-tool-call-thought-signature.json", "gemini/prism/function-calls-parallel-2.json",
                "gemini/prism/stream-function-calls-parallel-2.sse"):
        stream = rel.endswith(".sse")
        t = Translation("openai-chat", "gemini")
        wire = wire_bytes(rel) if stream else (FIXTURES / rel).read_bytes()
        client = translating_client("openai", t, wire, stream=stream)
        if stream:
            with client.chat.completions.stream(model="m", messages=USER_TURN, tools=TOOLS) as s:
                for _ in s:
                    pass
                message = s.current_completion_snapshot.choices[0].message
        else:
            message = client.chat.completions.create(model="m", messages=USER_TURN, tools=TOOLS).choices[0].message
        history = [*USER_TURN, message.model_dump(exclude_none=True)]
        history += [{"role": "tool", "tool_call_id": tc.id, "content": '{"temp": 20}'} for tc in message.tool_calls]
        g = _next_gemini_request("openai-chat", history, TOOLS)
        _check_calls_restored(rel, g)
        assert all(p["functionResponse"]["response"] == {"temp": 20} for p in g["contents"][2]["parts"])


def test_anthropic_client_tool_loop_keeps_gemini_signatures():
    for rel in ("gemini/vercel-ai/google-tool-call.chunks.jsonl", "gemini/prism/stream-thought-then-function-call.sse",
                "gemini/vercel-ai/google-partial-args-2-calls.chunks.jsonl"):
        t = Translation("anthropic", "gemini")
        client = translating_client("anthropic", t, wire_bytes(rel), stream=True)
        with client.messages.stream(model="m", max_tokens=500, messages=USER_TURN) as s:
            message = s.get_final_message()
        assert message.stop_reason == "tool_use"
        history = [*USER_TURN, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": "20C"}
                                                for b in message.content if b.type == "tool_use"]}]
        tools = [{"type": "function", "function": {"name": b.name}} for b in message.content if b.type == "tool_use"]
        g = _next_gemini_request("anthropic", history, tools)
        _check_calls_restored(rel, g)
        assert all(p["functionResponse"]["response"] == {"result": "20C"} for p in g["contents"][2]["parts"])
        if "thought" in rel:  # Gemini's thought summaries are shown to the client but not sent back
            assert all("thought" not in p for p in g["contents"][1]["parts"])


def _gemini_sdk(handler) -> genai.Client:
    return genai.Client(api_key="k", http_options=gtypes.HttpOptions(
        base_url="http://llmitm.test", httpx_client=httpx.Client(transport=httpx.MockTransport(handler)),
        retry_options=gtypes.HttpRetryOptions(attempts=1)))


def _chat_over_anthropic(rel: str, stream: bool):
    """google-genai chat → translation → an Anthropic upstream answering with `rel`, then a second turn
    whose translated request is returned."""
    wire = original = (FIXTURES / rel).read_bytes() if rel.endswith(".json") else wire_bytes(rel)
    upstream_bodies: list = []
    later = (FIXTURES / "anthropic-messages/vercel-ai/anthropic-text.json").read_bytes()

    def handler(request: httpx.Request):
        nonlocal wire
        t = Translation("gemini", "anthropic")
        up = t.request(json.loads(request.content), client_path=request.url.raw_path.decode())
        upstream_bodies.append(json.loads(up.body))
        if up.stream:
            s = t.stream()
            out = [c for piece in split(wire) for c in s.feed(piece)] + s.finish()
            wire = later
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(out))
        status, body = t.response(200, wire)
        wire = later  # the next turns: a plain answer
        return httpx.Response(status, headers={"content-type": "application/json"}, content=body)

    chat = _gemini_sdk(handler).chats.create(model="gemini-2.5-flash", config=gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(name="weather")])],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=gtypes.ThinkingConfig(thinking_budget=2000, include_thoughts=True), max_output_tokens=9000))
    if stream:
        first = list(chat.send_message_stream("weather?"))
    else:
        first = [chat.send_message("weather?")]
    calls = [p.function_call for r in first for p in r.candidates[0].content.parts if p.function_call]
    if calls:
        chat.send_message([gtypes.Part.from_function_response(name=c.name, response={"temp": 20}) for c in calls])
    else:
        chat.send_message("thanks")
    return json.loads(original) if rel.endswith(".json") else None, upstream_bodies


def test_gemini_client_keeps_anthropic_signed_thinking_across_a_tool_loop():
    original, bodies = _chat_over_anthropic("anthropic-messages/prism/thinking-text-tool-use.json", stream=False)
    second = bodies[1]
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 2000}  # signed thinking came back
    assistant = second["messages"][1]["content"]
    assert assistant[0] == next(b for b in original["content"] if b["type"] == "thinking")
    ids = [b["id"] for b in original["content"] if b["type"] == "tool_use"]
    assert [b["id"] for b in assistant if b["type"] == "tool_use"] == ids
    results = second["messages"][2]["content"]
    assert [(b["type"], b["tool_use_id"]) for b in results] == [("tool_result", i) for i in ids]


def test_gemini_streaming_chat_keeps_anthropic_signed_thinking():
    _, bodies = _chat_over_anthropic("anthropic-messages/prism/stream-thinking-signature.sse", stream=True)
    wire = wire_bytes("anthropic-messages/prism/stream-thinking-signature.sse").decode()
    thinking = signature = ""
    for line in wire.splitlines():
        if line.startswith("data:"):
            delta = json.loads(line[5:]).get("delta") or {}
            thinking += delta.get("thinking") or ""
            signature += delta.get("signature") or ""
    blocks = bodies[1]["messages"][1]["content"]
    assert blocks[0] == {"type": "thinking", "thinking": thinking, "signature": signature}
    assert blocks[1]["type"] == "text" and bodies[1]["messages"][2]["content"] == [{"type": "text", "text": "thanks"}]


def test_google_genai_automatic_function_calling_over_a_recorded_anthropic_tool_loop():
    """google-genai runs the tool itself (AFC) and sends the result back; the recorded two-step
    Anthropic exchange answers both requests."""
    steps = [wire_bytes("anthropic-messages/anthropic-sdk-python/tool-runner-stream-1.step1-tool-use.sse"),
             wire_bytes("anthropic-messages/anthropic-sdk-python/tool-runner-stream-1.step2-text.sse")]
    upstream_bodies: list = []
    calls: list = []

    def handler(request: httpx.Request):
        t = Translation("gemini", "anthropic")
        up = t.request(json.loads(request.content), upstream_model="claude-haiku-4-5",
                       client_path=request.url.raw_path.decode())
        upstream_bodies.append(json.loads(up.body))
        s = t.stream()
        out = [c for piece in split(steps[len(upstream_bodies) - 1]) for c in s.feed(piece)] + s.finish()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(out))

    def get_weather(location: str, units: str) -> dict:
        """Current weather for a location."""
        calls.append((location, units))
        return {"temperature": 68, "conditions": "foggy"}

    chunks = list(_gemini_sdk(handler).models.generate_content_stream(
        model="gemini-2.5-flash", contents="What's the weather in SF?",
        config=gtypes.GenerateContentConfig(tools=[get_weather])))
    assert calls == [("San Francisco, CA", "f")]
    assert len(upstream_bodies) == 2
    first, second = upstream_bodies
    assert first["tools"][0]["name"] == "get_weather" and first["stream"] is True
    tool_use = [b for b in second["messages"][1]["content"] if b["type"] == "tool_use"]
    result = second["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == tool_use[0]["id"] == "toolu_018acGYLtfR52q9yDbWaEdQZ"
    assert json.loads(result["content"]) == {"temperature": 68, "conditions": "foggy"}
    final = "".join(c.text or "" for c in chunks)
    expected = "".join(json.loads(line[5:]).get("delta", {}).get("text", "")
                       for line in steps[1].decode().splitlines() if line.startswith("data:"))
    assert final.endswith(expected) and expected
