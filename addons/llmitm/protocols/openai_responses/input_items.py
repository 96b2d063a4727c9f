"""The `input` array both ways: Responses client items → canonical messages, canonical messages → items."""

from __future__ import annotations

import json

from ..canonical import (
    Context,
    Document,
    Image,
    Message,
    Reasoning,
    Refusal,
    Request,
    Text,
    ToolCall,
    ToolResult,
    TranslationError,
)
from ..field_types import typed
from ..policy import image_from_url, new_id, parse_data_url
from .items import parse_reasoning_item
from .tools import namespaced_name, parse_tools


def parse_content(content, where: str) -> list:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise TranslationError(f"{where}: content must be a string or an array", param=where)
    parts: list = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise TranslationError(f"{here}: a content part must be an object", param=here)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(Text(typed(part.get("text"), "a string", f"{here}.text", "")))
        elif kind == "refusal":
            parts.append(Refusal(typed(part.get("refusal"), "a string", f"{here}.refusal", "")))
        elif kind == "input_image":
            if part.get("file_id"):
                raise TranslationError(f"{here}: images by file_id cannot be translated (send a URL or data URL)",
                                       param=here)
            url = typed(part.get("image_url"), "a string", f"{here}.image_url", "")
            detail = typed(part.get("detail"), "a string", f"{here}.detail")
            detail = None if detail == "auto" else detail
            parts.append(image_from_url(url, detail, here))
        elif kind == "input_file":
            if part.get("file_id"):
                raise TranslationError(f"{here}: files by file_id cannot be translated (send file_data)", param=here)
            inline = parse_data_url(typed(part.get("file_data"), "a string", f"{here}.file_data", ""))
            title = typed(part.get("filename"), "a string", f"{here}.filename")
            if inline:
                parts.append(Document(media_type=inline[0], data=inline[1], title=title))
            elif isinstance(part.get("file_url"), str):
                parts.append(Document(url=part["file_url"], title=title))
            else:
                raise TranslationError(f"{here}: input_file needs file_data (a base64 data URL) or file_url",
                                       param=here)
        else:
            raise TranslationError(f"{here}: content part type {kind!r} cannot be translated", param=here)
    return parts



def _call_id(item: dict, where: str) -> str:
    return (typed(item.get("call_id"), "a string", f"{where}.call_id")
            or typed(item.get("id"), "a string", f"{where}.id") or new_id("call_"))


def parse_input(items, req: Request, ctx: Context) -> None:
    if isinstance(items, str):
        req.messages.append(Message("user", [Text(items)]))
        return
    if not isinstance(items, list):
        raise TranslationError("input: field required (a string or an array of items)", param="input")

    def turn(role: str) -> Message:
        # Consecutive items of one side (assistant text, reasoning, function calls; tool outputs and
        # user text) form one canonical turn.
        if req.messages and req.messages[-1].role == role and role != "system":
            return req.messages[-1]
        req.messages.append(Message(role))
        return req.messages[-1]

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise TranslationError(f"{where}: an input item must be an object", param=where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            parts = parse_content(item.get("content"), where + ".content")
            if role in ("system", "developer"):
                texts = [p for p in parts if isinstance(p, Text)]
                if req.messages:
                    req.messages.append(Message("system", list(texts)))
                else:
                    req.system.extend(texts)
            elif role == "user":
                turn("user").parts.extend(parts)
            elif role == "assistant":
                turn("assistant").parts.extend(parts)
            else:
                raise TranslationError(f"{where}.role: role {role!r} cannot be translated", param=f"{where}.role")
        elif kind == "function_call":
            args = item.get("arguments")
            name = typed(item.get("name"), "a string", f"{where}.name", "")
            namespace = typed(item.get("namespace"), "a string", f"{where}.namespace")
            if namespace is not None:  # a call of a namespace's function: its upstream name
                name = namespaced_name(namespace, name)
            turn("assistant").parts.append(ToolCall(_call_id(item, where), name,
                                                    args if isinstance(args, str) else json.dumps(args or {})))
        elif kind == "custom_tool_call":
            name = typed(item.get("name"), "a string", f"{where}.name", "")
            namespace = typed(item.get("namespace"), "a string", f"{where}.namespace")
            if namespace is not None:
                name = namespaced_name(namespace, name)
            turn("assistant").parts.append(ToolCall(
                _call_id(item, where), name, json.dumps({"input": typed(item.get("input"), "a string", f"{where}.input", "")})))
        elif kind == "additional_tools":  # Codex 0.17x declares its tools here rather than in `tools`
            req.tools.extend(parse_tools(item.get("tools"), ctx))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if isinstance(output, str):
                content: list = [Text(output)]
            elif isinstance(output, list):
                content = parse_content(output, where + ".output")
            else:
                content = [] if output is None else [Text(json.dumps(output))]
            turn("user").parts.append(ToolResult(typed(item.get("call_id"), "a string", f"{where}.call_id", ""),
                                                 content))
        elif kind == "reasoning":
            reasoning = parse_reasoning_item(item)
            if reasoning.text or reasoning.signature or reasoning.redacted is not None:
                turn("assistant").parts.append(reasoning)
            elif item.get("encrypted_content"):
                ctx.warn("OpenAI encrypted reasoning dropped from history (bound to OpenAI)")
        elif kind == "item_reference":
            raise TranslationError(f"{where}: item_reference needs OpenAI's response store, which this upstream "
                                   "does not have (send the items themselves)", param=where)
        else:
            raise TranslationError(f"{where}: input item type {kind!r} cannot be translated", param=where)




def render_user_parts(parts: list, where: str, ctx: Context) -> list[dict]:
    out: list[dict] = []
    for p in parts:
        if isinstance(p, (Text, Refusal)):
            out.append({"type": "input_text", "text": p.text})
        elif isinstance(p, Image):
            url = p.url if p.data is None else f"data:{p.media_type or 'image/png'};base64,{p.data}"
            out.append({"type": "input_image", "image_url": url, "detail": p.detail or "auto"})
        elif isinstance(p, Document):
            if p.text is not None:
                out.append({"type": "input_text", "text": p.text})
            elif p.data is not None:
                out.append({"type": "input_file", "file_data": f"data:{p.media_type};base64,{p.data}",
                            "filename": p.title or "document.pdf"})
            else:
                file: dict = {"type": "input_file", "file_url": p.url or ""}
                if p.title:
                    file["filename"] = p.title
                out.append(file)
        elif isinstance(p, Reasoning):
            ctx.warn("reasoning from earlier turns not sent upstream")
    return out


def render_input(req: Request, ctx: Context) -> list[dict]:
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        where = f"messages[{i}].content"
        if m.role == "system":
            out.append({"type": "message", "role": "system",
                        "content": "\n\n".join(p.text for p in m.parts if isinstance(p, Text))})
        elif m.role == "user":
            for p in m.parts:
                if isinstance(p, ToolResult):
                    inner = render_user_parts(p.content, where, ctx)
                    if p.is_error:
                        ctx.warn("tool_result is_error flag dropped (function_call_output has none)")
                    output: str | list = ("".join(x["text"] for x in inner)
                                          if all(x["type"] == "input_text" for x in inner) else inner)
                    out.append({"type": "function_call_output", "call_id": p.tool_call_id, "output": output})
            rest = render_user_parts([p for p in m.parts if not isinstance(p, ToolResult)], where, ctx)
            if rest:
                out.append({"type": "message", "role": "user", "content": rest})
        else:
            texts: list[str] = []  # a run of text up to the next call is one assistant message
            for p in m.parts:
                if isinstance(p, (Text, Refusal)):
                    texts.append(p.text)
                elif isinstance(p, ToolCall):
                    if texts:
                        out.append({"type": "message", "role": "assistant", "content": "".join(texts)})
                        texts = []
                    out.append({"type": "function_call", "call_id": p.id, "name": p.name,
                                "arguments": p.arguments or "{}"})
                elif isinstance(p, Reasoning):
                    ctx.warn("reasoning from earlier turns not sent upstream")
            if texts:
                out.append({"type": "message", "role": "assistant", "content": "".join(texts)})
    return out

