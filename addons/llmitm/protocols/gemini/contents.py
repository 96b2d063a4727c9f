"""`contents` (the conversation) both ways: Gemini client → canonical messages and canonical → Gemini upstream."""

from __future__ import annotations

import json
import re

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
    as_dict,
)
from .fields import camel_keys, get_field
from .parts import (
    args_object,
    file_data_part,
    function_response_content,
    inline_data_part,
    merge_adjacent,
    render_function_response,
    render_media,
)
from .signatures import DUMMY_SIGNATURE, decode_foreign_signature, split_tool_id

# Model families that do not validate thought signatures: no placeholder for them.
_NO_SIGNATURE_CHECK = re.compile(r"gemini-(1\.|2\.)")


def parse_contents(contents, ctx: Context) -> list[Message]:
    messages: list[Message] = []
    pending: dict[str, list[str]] = {}  # function name → ids of calls not answered yet (FIFO)
    warned_sig = False
    for i, content in enumerate(contents):
        content = as_dict(content)
        where = f"contents[{i}]"
        role = content.get("role") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise TranslationError(f"{where}.role: unexpected role {role!r}", param=f"{where}.role")
        raw_parts = content.get("parts")
        if not isinstance(raw_parts, list):
            raise TranslationError(f"{where}.parts: an array is required", param=f"{where}.parts")
        parts: list = []
        for j, part in enumerate(raw_parts):
            part = as_dict(part)
            here = f"{where}.parts[{j}]"
            signature = get_field(part, "thoughtSignature")
            if signature == DUMMY_SIGNATURE:
                signature = None
            fc = get_field(part, "functionCall")
            fr = get_field(part, "functionResponse")
            text = part.get("text")
            if isinstance(fc, dict):
                name = str(fc.get("name") or "")
                raw_id = fc.get("id")
                call_id = raw_id if isinstance(raw_id, str) and raw_id else f"call_{i}_{j}"
                pending.setdefault(name, []).append(call_id)
                args = fc.get("args")
                parts.append(ToolCall(call_id, name, json.dumps(args if args is not None else {})))
            elif isinstance(fr, dict):
                name = str(fr.get("name") or "")
                call_id = fr.get("id") if isinstance(fr.get("id"), str) and fr.get("id") else None
                queue = pending.get(name) or []
                if call_id is None:
                    if not queue:
                        raise TranslationError(f"{here}.functionResponse: no earlier functionCall named {name!r} "
                                               "to answer", param=here)
                    call_id = queue.pop(0)
                elif call_id in queue:
                    queue.remove(call_id)
                content_parts, is_error = function_response_content(fr.get("response"), fr.get("parts"), here, ctx)
                parts.append(ToolResult(call_id, content_parts, is_error))
            elif isinstance(text, str):
                if part.get("thought") is True:
                    foreign = decode_foreign_signature(signature)
                    if foreign and isinstance(foreign.get("r"), str):
                        parts.append(Reasoning("", None, foreign["r"]))
                    else:
                        parts.append(Reasoning(text, foreign.get("s") if foreign else None))
                    if foreign:
                        continue
                else:
                    parts.append(Text(text))
            elif isinstance(get_field(part, "inlineData"), dict):
                parts.append(inline_data_part(get_field(part, "inlineData"), here))
            elif isinstance(get_field(part, "fileData"), dict):
                parts.append(file_data_part(get_field(part, "fileData"), here))
            elif get_field(part, "executableCode") is not None or get_field(part, "codeExecutionResult") is not None:
                ctx.warn("code execution parts dropped from history (no equivalent upstream)")
                continue
            else:
                ctx.warn(f"part with fields {sorted(camel_keys(part))} dropped (no equivalent upstream)")
                continue
            if signature and not warned_sig:
                warned_sig = True  # Gemini's own signatures mean nothing to another provider
                ctx.warn("thoughtSignature dropped (provider-bound; the upstream is not Gemini)")
        msg_role = "assistant" if role == "model" else "user"
        parts = merge_adjacent(parts, msg_role == "assistant")
        if messages and messages[-1].role == msg_role:
            messages[-1].parts = merge_adjacent(messages[-1].parts + parts, msg_role == "assistant")
        else:
            messages.append(Message(msg_role, parts))
    return messages


def render_contents(req: Request, ctx: Context) -> tuple[list[str], list[dict]]:
    system = [t.text for t in req.system if t.text]
    names: dict[str, str] = {}  # client tool id → function name (functionResponse needs the name)
    for m in req.messages:
        for p in m.parts:
            if isinstance(p, ToolCall):
                names[p.id] = p.name
    # Gemini 3 validates the signatures of the current turn: the model steps after the last user
    # message that is more than function results.
    turn_start = max((i for i, m in enumerate(req.messages) if m.role == "user"
                      and any(not isinstance(p, ToolResult) for p in m.parts)), default=-1)
    placeholder = not _NO_SIGNATURE_CHECK.search(req.model)
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        where = f"messages[{i}]"
        if m.role == "system":
            ctx.warn("system message inside the conversation moved to systemInstruction (position lost)")
            system.extend(p.text for p in m.parts if isinstance(p, Text) and p.text)
            continue
        parts: list[dict] = []
        late: list[dict] = []
        signed_first = False
        for j, p in enumerate(m.parts):
            here = f"{where}.content[{j}]"
            if isinstance(p, (Text, Refusal)):
                if p.text:  # Gemini rejects empty text parts
                    parts.append({"text": p.text})
            elif isinstance(p, (Image, Document)):
                parts.append(render_media(p, here, ctx))
            elif isinstance(p, ToolCall):
                gemini_id, signature = split_tool_id(p.id)
                fc: dict = {"name": p.name, "args": args_object(p.arguments, ctx)}
                if gemini_id:
                    fc["id"] = gemini_id
                part: dict = {"functionCall": fc}
                if signature:
                    part["thoughtSignature"] = signature
                    signed_first = True
                elif not signed_first and m.role == "assistant" and i > turn_start and placeholder:
                    # Only the first call of a turn carries a signature; a turn from another model has none.
                    part["thoughtSignature"] = DUMMY_SIGNATURE
                    signed_first = True
                parts.append(part)
            elif isinstance(p, ToolResult):
                name = names.get(p.tool_call_id)
                if name is None:
                    raise TranslationError(f"{here}: tool result {p.tool_call_id!r} answers no tool call in the "
                                           "conversation (Gemini needs the function name)", param=here)
                gemini_id, _ = split_tool_id(p.tool_call_id)
                fr, media = render_function_response(p, name, gemini_id, ctx)
                parts.append(fr)
                for k, x in enumerate(media):
                    ctx.warn("images in tool results moved to parts after the function responses")
                    late.append(render_media(x, f"{here}.content[{k}]", ctx))
            elif isinstance(p, Reasoning):
                ctx.warn("reasoning from earlier turns not sent upstream (Gemini takes only its own signatures)")
        parts.extend(late)
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:  # Gemini expects alternating turns: merge
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    for turn in out:
        if turn["role"] == "user":  # function responses open the user turn, in call order
            turn["parts"].sort(key=lambda x: "functionResponse" not in x)
    return system, out
