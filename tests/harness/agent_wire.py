"""The wire protocols as a scripted model speaks them (Anthropic and Gemini here, the two OpenAI ones in
agent_wire_openai.py): read a request, check it the way the real API does, and write an answer (a tool
call or text; a whole JSON body or an SSE stream).

Used by `agent_upstream.ScriptedAgentUpstream`, which decides *what* to answer. What each `check`
rejects is what the real API answers with a 400 (PROTOCOLS.md §6 "Traps seen with real clients"):
tool schemas that are not JSON Schema where the API wants JSON Schema (Gemini's upper-case type
names, which Gemini CLI's router sends), `temperature` together with `top_p` (Claude 4.5+ models),
thinking blocks without the signature the model issued, a Gemini function call without its thought
signature, Responses reasoning the model did not issue, and tool results that answer no tool call.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .upstream import Reply


class Rejected(Exception):
    """What the real API would refuse with this status (the request's fault)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Conversation:
    """What the scripted model needs of a request, whatever its protocol."""

    tools: dict[str, dict] = field(default_factory=dict)  # function name -> JSON-ish parameter schema
    custom_tools: set[str] = field(default_factory=set)  # free-text tools (Responses `custom`): input is a string
    namespaces: dict[str, str] = field(default_factory=dict)  # tool name -> its Responses namespace
    tool_results: list[str] = field(default_factory=list)  # tool outputs in the request's last turn
    response_schema: dict | None = None  # structured output asked for
    stream: bool = False
    model: str = ""


@dataclass
class ToolCall:
    name: str
    arguments: dict
    call_id: str = field(default_factory=lambda: "call_" + secrets.token_hex(8))
    custom_input: str | None = None  # a free-text tool's input (then `arguments` is unused)
    namespace: str | None = None


@dataclass
class Text:
    text: str


Answer = ToolCall | Text


def check_json_schema(schema: Any, where: str) -> None:
    """JSON Schema as OpenAI and Anthropic require it: a valid schema whose root is an object."""
    if not isinstance(schema, dict):
        raise Rejected(f"{where}: schema must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        raise Rejected(f"{where}: invalid JSON schema: {e.message}") from None
    if schema.get("type") != "object":
        raise Rejected(f"{where}: schema must have type 'object'")


def sse(events: list[tuple[str | None, dict]], done: bool = False) -> list[bytes]:
    out = [(f"event: {name}\n" if name else "").encode() + b"data: " + json.dumps(data).encode() + b"\n\n" for name, data in events]
    return out + ([b"data: [DONE]\n\n"] if done else [])


def text_of(content: Any) -> str:
    """Tool output as text, whatever shape the protocol gave it."""
    return content if isinstance(content, str) else json.dumps(content)


# -- Anthropic Messages -------------------------------------------------------------------------------

class Anthropic:
    name = "anthropic"
    TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")

    def __init__(self, signatures: set[str]):
        self.signatures = signatures  # thinking signatures this model issued

    def read(self, body: dict, path: str) -> Conversation:
        self.check(body)
        conv = Conversation(stream=bool(body.get("stream")), model=body.get("model", ""))
        for tool in body.get("tools") or []:
            if "input_schema" in tool:
                conv.tools[tool["name"]] = tool["input_schema"]
        last = body["messages"][-1] if body.get("messages") else {}
        if last.get("role") == "user" and isinstance(last.get("content"), list):
            conv.tool_results = [text_of(b.get("content")) for b in last["content"] if b.get("type") == "tool_result"]
        fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
        if fmt and fmt.get("type") == "json_schema":
            conv.response_schema = fmt["schema"]
        return conv

    def check(self, body: dict) -> None:
        if body.get("temperature") is not None and body.get("top_p") is not None:
            raise Rejected("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
        if not isinstance(body.get("max_tokens"), int):
            raise Rejected("max_tokens: Field required")
        for i, tool in enumerate(body.get("tools") or []):
            if "input_schema" in tool:  # a custom tool (server tools carry a `type` instead)
                if not self.TOOL_NAME.match(tool.get("name", "")):
                    raise Rejected(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
                check_json_schema(tool["input_schema"], f"tools.{i}.custom.input_schema")
        fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
        if fmt and fmt.get("type") == "json_schema":
            check_json_schema(fmt.get("schema"), "output_config.format.schema")
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        messages = body.get("messages") or []
        for i, message in enumerate(messages):
            blocks = message.get("content") if isinstance(message.get("content"), list) else []
            if message.get("role") == "assistant":
                for j, block in enumerate(blocks):
                    if block.get("type") == "thinking" and block.get("signature") not in self.signatures:
                        raise Rejected(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
                uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
                if uses:
                    if thinking and i == len(messages) - 2 and blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                        raise Rejected("messages.{}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                                       "`{}`. When `thinking` is enabled, a final `assistant` message must start with a "
                                       "thinking block".format(i, blocks[0].get("type")))
                    following = messages[i + 1].get("content") if i + 1 < len(messages) else None
                    answered = {b.get("tool_use_id") for b in following if isinstance(b, dict)} if isinstance(following, list) else set()
                    if set(uses) - answered:
                        raise Rejected(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after")

    def render(self, answer: Answer, conv: Conversation, thinking: bool) -> Reply:
        blocks: list[dict] = []
        if thinking:
            signature = "sig-" + secrets.token_hex(12)
            self.signatures.add(signature)
            blocks.append({"type": "thinking", "thinking": "Reading the file is the way.", "signature": signature})
        if isinstance(answer, ToolCall):
            blocks.append({"type": "tool_use", "id": "toolu_" + answer.call_id[5:], "name": answer.name, "input": answer.arguments})
        else:
            blocks.append({"type": "text", "text": answer.text})
        stop = "tool_use" if isinstance(answer, ToolCall) else "end_turn"
        message = {"id": "msg_" + secrets.token_hex(8), "type": "message", "role": "assistant", "model": conv.model,
                   "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 42, "output_tokens": 7}}
        if not conv.stream:
            return Reply.json(200, message)
        events: list[tuple[str | None, dict]] = [("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "usage": {"input_tokens": 42, "output_tokens": 1}}})]
        for index, block in enumerate(blocks):
            kind = block["type"]
            start = {"thinking": {"type": "thinking", "thinking": "", "signature": ""}, "text": {"type": "text", "text": ""},
                     "tool_use": {**block, "input": {}}}[kind]
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
            deltas = {"thinking": [{"type": "thinking_delta", "thinking": block.get("thinking")},
                                   {"type": "signature_delta", "signature": block.get("signature")}],
                      "text": [{"type": "text_delta", "text": block.get("text")}],
                      "tool_use": [{"type": "input_json_delta", "partial_json": json.dumps(block.get("input"))}]}[kind]
            events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": 7}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return Reply(events=sse(events))

    def error(self, status: int, message: str) -> Reply:
        kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}.get(status, "api_error")
        return Reply.json(status, {"type": "error", "error": {"type": kind, "message": message}})


# -- Gemini -------------------------------------------------------------------------------------------

class Gemini:
    name = "gemini"
    FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")

    def __init__(self, signatures: set[str]):
        self.signatures = signatures  # thought signatures this model issued

    def read(self, body: dict, path: str) -> Conversation:
        self.check(body)
        model = path.split("/models/", 1)[-1].split(":", 1)[0]
        conv = Conversation(stream=":streamGenerateContent" in path, model=model)
        for tool in body.get("tools") or []:
            for declaration in tool.get("functionDeclarations") or []:
                conv.tools[declaration["name"]] = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
        contents = body.get("contents") or []
        if contents and contents[-1].get("role", "user") == "user":
            conv.tool_results = [text_of(p["functionResponse"].get("response")) for p in contents[-1].get("parts") or []
                                 if "functionResponse" in p]
        config = body.get("generationConfig") or {}
        conv.response_schema = config.get("responseJsonSchema") or config.get("responseSchema")
        return conv

    def check(self, body: dict) -> None:
        for tool in body.get("tools") or []:
            for i, declaration in enumerate(tool.get("functionDeclarations") or []):
                if not self.FUNCTION_NAME.match(declaration.get("name", "")):
                    raise Rejected(f"* GenerateContentRequest.tools[0].function_declarations[{i}].name: Invalid function name.")
                if "parametersJsonSchema" in declaration and "parameters" in declaration:
                    raise Rejected(f"function_declarations[{i}]: `parameters` and `parameters_json_schema` are mutually exclusive")
        for i, content in enumerate(body.get("contents") or []):
            if content.get("role") != "model":
                continue
            for j, part in enumerate(content.get("parts") or []):
                if "functionCall" in part and part.get("thoughtSignature") not in self.signatures:
                    raise Rejected(f"Function call is missing a thought_signature in functionCall parts. This is required "
                                   f"for tools to work correctly (contents[{i}].parts[{j}]).")

    def render(self, answer: Answer, conv: Conversation, thinking: bool) -> Reply:
        signature = secrets.token_urlsafe(16)
        self.signatures.add(signature)
        if isinstance(answer, ToolCall):
            parts = [{"functionCall": {"name": answer.name, "args": answer.arguments}, "thoughtSignature": signature}]
        else:
            parts = [{"text": answer.text, "thoughtSignature": signature}]
        usage = {"promptTokenCount": 42, "candidatesTokenCount": 7, "totalTokenCount": 49}
        body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage, "modelVersion": conv.model, "responseId": secrets.token_hex(8)}
        if not conv.stream:
            return Reply.json(200, body)
        return Reply(events=[b"data: " + json.dumps(body).encode() + b"\r\n\r\n"])

    def error(self, status: int, message: str) -> Reply:
        state = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}.get(status, "INTERNAL")
        return Reply.json(status, {"error": {"code": status, "message": message, "status": state}})
