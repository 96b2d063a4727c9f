"""The two OpenAI protocols as the scripted model speaks them (see agent_wire.py for what a wire class
does): Chat Completions, and Responses with the tools Codex sends (namespaces, free-text `custom`
tools, hosted tools, and tools inside an `additional_tools` input item).
"""

from __future__ import annotations

import json
import re
import secrets
import time

from .agent_wire import Answer, Conversation, Rejected, ToolCall, check_json_schema, sse, text_of
from .upstream import Reply

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
