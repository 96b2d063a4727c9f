"""The four wire protocols as a scripted model speaks them: read a request, check it the way the real
API does, and write an answer (a tool call or text; a whole JSON body or an SSE stream).

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
import time
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


# -- OpenAI Chat Completions --------------------------------------------------------------------------

class OpenAIChat:
    name = "openai-chat"
    FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

    def read(self, body: dict, path: str) -> Conversation:
        self.check(body)
        conv = Conversation(stream=bool(body.get("stream")), model=body.get("model", ""))
        for tool in body.get("tools") or []:
            if tool.get("type") == "function":
                conv.tools[tool["function"]["name"]] = tool["function"].get("parameters") or {}
            elif tool.get("type") == "custom":
                conv.tools[tool["custom"]["name"]] = {}
                conv.custom_tools.add(tool["custom"]["name"])
        messages = body.get("messages") or []
        tail = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            tail.append(text_of(message.get("content")))
        conv.tool_results = tail[::-1]
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            conv.response_schema = fmt["json_schema"]["schema"]
        return conv

    def check(self, body: dict) -> None:
        for i, tool in enumerate(body.get("tools") or []):
            if tool.get("type") not in ("function", "custom"):
                raise Rejected(f"Invalid value: '{tool.get('type')}'. Supported values are: 'function' and 'custom'.")
            if tool["type"] == "function":
                function = tool.get("function") or {}
                if not self.FUNCTION_NAME.match(function.get("name", "")):
                    raise Rejected(f"Invalid 'tools[{i}].function.name': string does not match pattern.")
                if "parameters" in function:
                    check_json_schema(function["parameters"], f"tools[{i}].function.parameters")
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            check_json_schema((fmt.get("json_schema") or {}).get("schema"), "response_format.json_schema.schema")
        called: set[str] = set()
        for i, message in enumerate(body.get("messages") or []):
            called |= {c["id"] for c in message.get("tool_calls") or []}
            if message.get("role") == "tool" and message.get("tool_call_id") not in called:
                raise Rejected(f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                               f"with 'tool_calls' (messages[{i}]).")

    def render(self, answer: Answer, conv: Conversation, thinking: bool) -> Reply:
        base = {"id": "chatcmpl-" + secrets.token_hex(8), "created": int(time.time()), "model": conv.model}
        usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        call = None
        if isinstance(answer, ToolCall) and answer.custom_input is not None:
            call = {"id": answer.call_id, "type": "custom", "custom": {"name": answer.name, "input": answer.custom_input}}
        elif isinstance(answer, ToolCall):
            call = {"id": answer.call_id, "type": "function", "function": {"name": answer.name, "arguments": json.dumps(answer.arguments)}}
        finish = "tool_calls" if call else "stop"
        if not conv.stream:
            message = {"role": "assistant", "content": None if call else answer.text, **({"tool_calls": [call]} if call else {})}
            return Reply.json(200, {**base, "object": "chat.completion", "usage": usage,
                                    "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
        chunk = {**base, "object": "chat.completion.chunk"}
        delta = {"tool_calls": [{"index": 0, **call}]} if call else {"content": answer.text}
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None if call else ""}, "finish_reason": None}]},
                  {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                  {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                  {**chunk, "choices": [], "usage": usage}]
        return Reply(events=sse([(None, e) for e in events], done=True))

    def error(self, status: int, message: str) -> Reply:
        return Reply.json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})


# -- OpenAI Responses ---------------------------------------------------------------------------------

# An item as `response.output_item.added` carries it: its content still to come (as OpenAI sends it).
EMPTY_WHEN_ADDED = {"message": {"content": []}, "function_call": {"arguments": ""}, "custom_tool_call": {"input": ""}}


class OpenAIResponses(OpenAIChat):
    name = "openai-responses"
    HOSTED_TOOLS = {"web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation",
                    "local_shell", "computer_use_preview", "mcp", "tool_search"}

    def __init__(self, reasoning: set[str]):
        self.reasoning = reasoning  # encrypted reasoning this model issued

    def read(self, body: dict, path: str) -> Conversation:
        self.check(body)
        conv = Conversation(stream=bool(body.get("stream")), model=body.get("model", ""))
        items = body.get("input") if isinstance(body.get("input"), list) else []
        for tool, namespace in self._functions(self._all_tools(body)):
            if tool["type"] == "custom":
                conv.custom_tools.add(tool["name"])
            conv.tools[tool["name"]] = tool.get("parameters") or {}
            if namespace:
                conv.namespaces[tool["name"]] = namespace
        tail = []
        for item in reversed(items):
            if item.get("type") not in ("function_call_output", "custom_tool_call_output"):
                break
            tail.append(text_of(item.get("output")))
        conv.tool_results = tail[::-1]
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            conv.response_schema = fmt["schema"]
        return conv

    @staticmethod
    def _all_tools(body: dict) -> list[dict]:
        """`tools`, and those Codex (0.17x) sends in `additional_tools` input items instead."""
        items = body.get("input") if isinstance(body.get("input"), list) else []
        return (body.get("tools") or []) + [t for i in items if i.get("type") == "additional_tools" for t in i.get("tools") or []]

    def _functions(self, tools: list[dict], namespace: str | None = None) -> list[tuple[dict, str | None]]:
        """Function and custom tools, with the namespace holding each."""
        out = []
        for tool in tools:
            if tool.get("type") == "namespace":
                out += self._functions(tool.get("tools") or [], tool.get("name"))
            elif tool.get("type") in ("function", "custom"):
                out.append((tool, namespace))
        return out

    def check(self, body: dict) -> None:
        for i, tool in enumerate(self._all_tools(body)):
            kind = tool.get("type")
            if kind not in self.HOSTED_TOOLS | {"function", "custom", "namespace"}:
                raise Rejected(f"Invalid value: '{kind}'. Supported values are: 'function', 'custom', 'namespace', "
                               f"{', '.join(repr(t) for t in sorted(self.HOSTED_TOOLS))}. (tools[{i}].type)")
        for i, (tool, _) in enumerate(self._functions(self._all_tools(body))):
            if not self.FUNCTION_NAME.match(tool.get("name", "")):
                raise Rejected(f"Invalid 'tools[{i}].name': string does not match pattern.")
            if "parameters" in tool:
                check_json_schema(tool["parameters"], f"tools[{i}].parameters")
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            check_json_schema(fmt.get("schema"), "text.format.schema")
        called: set[str] = set()
        for item in body.get("input") if isinstance(body.get("input"), list) else []:
            if item.get("type") in ("function_call", "custom_tool_call"):
                called.add(item.get("call_id"))
            if item.get("type") in ("function_call_output", "custom_tool_call_output") and item.get("call_id") not in called:
                raise Rejected(f"No tool call found for function call output with call_id {item.get('call_id')}.")
            if item.get("type") == "reasoning" and item.get("encrypted_content") is not None \
                    and item["encrypted_content"] not in self.reasoning:
                raise Rejected(f"The encrypted content for item {item.get('id')} could not be verified.")

    def render(self, answer: Answer, conv: Conversation, thinking: bool) -> Reply:
        output: list[dict] = []
        if thinking:
            encrypted = "enc-" + secrets.token_hex(12)
            self.reasoning.add(encrypted)
            output.append({"type": "reasoning", "id": "rs_" + secrets.token_hex(8), "summary": [], "encrypted_content": encrypted})
        if isinstance(answer, ToolCall) and answer.custom_input is not None:
            output.append({"type": "custom_tool_call", "id": "ctc_" + secrets.token_hex(8), "call_id": answer.call_id,
                           "name": answer.name, "input": answer.custom_input, "status": "completed",
                           **({"namespace": answer.namespace} if answer.namespace else {})})
        elif isinstance(answer, ToolCall):
            output.append({"type": "function_call", "id": "fc_" + secrets.token_hex(8), "call_id": answer.call_id,
                           "name": answer.name, "arguments": json.dumps(answer.arguments), "status": "completed",
                           **({"namespace": answer.namespace} if answer.namespace else {})})
        else:
            output.append({"type": "message", "id": "msg_" + secrets.token_hex(8), "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": answer.text, "annotations": []}]})
        usage = {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 49}
        response = {"id": "resp_" + secrets.token_hex(8), "object": "response", "created_at": int(time.time()),
                    "status": "completed", "model": conv.model, "output": output, "usage": usage, "error": None,
                    "incomplete_details": None, "parallel_tool_calls": True, "tools": [], "tool_choice": "auto"}
        if not conv.stream:
            return Reply.json(200, response)
        events: list[dict] = [{"type": "response.created", "response": {**response, "status": "in_progress", "output": [], "usage": None}}]
        for index, item in enumerate(output):
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "status": "in_progress", **EMPTY_WHEN_ADDED.get(item["type"], {})}})
            if item["type"] == "message":
                part = item["content"][0]
                events += [{"type": "response.content_part.added", "output_index": index, "item_id": item["id"], "content_index": 0,
                            "part": {**part, "text": ""}},
                           {"type": "response.output_text.delta", "output_index": index, "item_id": item["id"], "content_index": 0,
                            "delta": part["text"]},
                           {"type": "response.output_text.done", "output_index": index, "item_id": item["id"], "content_index": 0,
                            "text": part["text"]},
                           {"type": "response.content_part.done", "output_index": index, "item_id": item["id"], "content_index": 0,
                            "part": part}]
            elif item["type"] == "custom_tool_call":
                events += [{"type": "response.custom_tool_call_input.delta", "output_index": index, "item_id": item["id"],
                            "delta": item["input"]},
                           {"type": "response.custom_tool_call_input.done", "output_index": index, "item_id": item["id"],
                            "input": item["input"]}]
            elif item["type"] == "function_call":
                events += [{"type": "response.function_call_arguments.delta", "output_index": index, "item_id": item["id"],
                            "delta": item["arguments"]},
                           {"type": "response.function_call_arguments.done", "output_index": index, "item_id": item["id"],
                            "arguments": item["arguments"]}]
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        events.append({"type": "response.completed", "response": response})
        return Reply(events=sse([(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)]))


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
