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
)
from ..policy import as_dict
from .fields import camel_keys, get_field, typed_field
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


def _function_call(fc: dict, here: str, default_id: str) -> ToolCall:
    where = f"{here}.functionCall"
    name = typed_field(fc, "name", "a string", where, "")
    call_id = typed_field(fc, "id", "a string", where) or default_id
    args = typed_field(fc, "args", "an object", where, {})
    return ToolCall(call_id, name, json.dumps(args))


def _carried_reasoning(signature) -> list[Reasoning] | None:
    """The reasoning llmitm put on a functionCall part's thoughtSignature (see response.reasoning_on_call),
    or None when the signature is not one of llmitm's."""
    foreign = decode_foreign_signature(signature)
    blocks = foreign.get("reasoning") if foreign else None
    if not isinstance(blocks, list):
        return None
    out = []
    for block in blocks:
        block = as_dict(block)
        if isinstance(block.get("redacted"), str):
            out.append(Reasoning("", None, block["redacted"]))
        elif isinstance(block.get("signature"), str) and isinstance(block.get("text"), str):
            out.append(Reasoning(block["text"], block["signature"]))
    return out


def parse_contents(contents, ctx: Context) -> list[Message]:
    messages: list[Message] = []
    pending: dict[str, list[str]] = {}  # function name → ids of calls not answered yet (FIFO)
    warned_sig = False
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise TranslationError(f"{where}: a content must be an object", param=where)
        role = typed_field(content, "role", "a string", where) or "user"
        if role not in ("user", "model", "function", "tool"):
            raise TranslationError(f"{where}.role: unexpected role {role!r}", param=f"{where}.role")
        raw_parts = content.get("parts")
        if not isinstance(raw_parts, list):
            raise TranslationError(f"{where}.parts: an array is required", param=f"{where}.parts")
        parts: list = []
        for j, part in enumerate(raw_parts):
            here = f"{where}.parts[{j}]"
            if not isinstance(part, dict):
                raise TranslationError(f"{here}: a part must be an object", param=here)
            signature = get_field(part, "thoughtSignature")
            if signature == DUMMY_SIGNATURE:
                signature = None
            fc = typed_field(part, "functionCall", "an object", here)
            fr = typed_field(part, "functionResponse", "an object", here)
            text = typed_field(part, "text", "a string", here)
            if fc is not None:
                carried = _carried_reasoning(signature)
                if carried is not None:
                    # The client kept llmitm's signature where Gemini clients keep it. Thought parts it may
                    # also have sent back are copies of the same reasoning; the signed blocks open the
                    # turn, where the reasoning stood (Anthropic wants thinking first).
                    parts[:] = carried + [p for p in parts if type(p) is not Reasoning]
                    signature = None
                call = _function_call(fc, here, f"call_{i}_{j}")
                pending.setdefault(call.name, []).append(call.id)
                parts.append(call)
            elif fr is not None:
                name = typed_field(fr, "name", "a string", f"{here}.functionResponse", "")
                call_id = typed_field(fr, "id", "a string", f"{here}.functionResponse") or None
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
            elif text is not None:
                if part.get("thought") is True:
                    foreign = decode_foreign_signature(signature)
                    if foreign and isinstance(foreign.get("r"), str):
                        parts.append(Reasoning("", None, foreign["r"]))
                    else:
                        carried_signature = foreign.get("s") if foreign else None
                        parts.append(Reasoning(text, carried_signature if isinstance(carried_signature, str)
                                               else None))
                    if foreign:
                        continue
                else:
                    parts.append(Text(text))
            elif (blob := typed_field(part, "inlineData", "an object", here)) is not None:
                parts.append(inline_data_part(blob, here))
            elif (file := typed_field(part, "fileData", "an object", here)) is not None:
                parts.append(file_data_part(file, here))
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
