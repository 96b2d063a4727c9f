"""OpenAI Chat non-stream responses, finish reasons and usage (PROTOCOLS.md §2.5, §2.8)."""

from __future__ import annotations

import time

from ..canonical import (
    CONTENT_FILTER,
    CONTEXT_WINDOW,
    END,
    MAX_TOKENS,
    PAUSE,
    STOP_SEQUENCE,
    TOOL_USE,
    Context,
    Reasoning,
    Refusal,
    Response,
    Text,
    ToolCall,
    TranslationError,
    Usage,
)
from ..policy import as_dict
from ..think_tags import split_think
from .request import parse_assistant_message

FINISH_OUT = {
    END: "stop", STOP_SEQUENCE: "stop", MAX_TOKENS: "length", TOOL_USE: "tool_calls",
    CONTENT_FILTER: "content_filter", PAUSE: "stop", CONTEXT_WINDOW: "length",
}
FINISH_IN = {"stop": END, "length": MAX_TOKENS, "tool_calls": TOOL_USE, "function_call": TOOL_USE,
             "content_filter": CONTENT_FILTER}


def parse_usage(u: dict) -> Usage:
    pd = as_dict(u.get("prompt_tokens_details"))
    cd = as_dict(u.get("completion_tokens_details"))
    cached = pd.get("cached_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")  # DeepSeek
    reasoning = cd.get("reasoning_tokens")
    return Usage(
        input_total=u.get("prompt_tokens") or 0,
        cached_read=cached or 0,
        cache_write=pd.get("cache_write_tokens") or u.get("cache_write_tokens") or 0,
        output_total=u.get("completion_tokens") or 0,
        reasoning=reasoning if isinstance(reasoning, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    u = u or Usage()
    prompt_details = {"cached_tokens": u.cached_read}
    if u.cache_write:
        prompt_details["cache_write_tokens"] = u.cache_write
    out = {
        "prompt_tokens": u.input_total, "completion_tokens": u.output_total,
        "total_tokens": u.input_total + u.output_total,
        "prompt_tokens_details": prompt_details,
    }
    if u.reasoning is not None:  # Anthropic does not split reasoning out: say nothing rather than 0
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning}
    return out



def stop_reason_of(choice: dict, ctx: Context) -> tuple[str | None, str | None]:
    reason = choice.get("finish_reason")
    matched = choice.get("stop_reason")  # vLLM: the stop string that ended generation
    if reason == "stop" and isinstance(matched, str):
        return STOP_SEQUENCE, matched
    if reason is None:
        return None, None
    stop = FINISH_IN.get(reason)
    if stop is None:
        ctx.warn(f"unknown finish_reason {reason!r} reported as end of turn")
        stop = END
    return stop, None


def parse_response(body: dict, ctx: Context, *, think_tags: bool = True) -> Response:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(as_dict(choices[0]).get("message"), dict):
        raise ValueError("no choices[0].message")
    if len(choices) > 1:
        ctx.warn("only the first of several choices was translated")
    choice = choices[0]
    message = choice["message"]
    try:
        parts = parse_assistant_message(message, "choices[0].message")
    except TranslationError as e:  # the upstream's fault, not the client's: a 502, not a 400
        raise ValueError(f"malformed upstream message: {e.message}") from None
    if think_tags and not any(isinstance(p, Reasoning) for p in parts):  # <think>…</think> in content (SmolLM3…)
        for k, p in enumerate(parts):
            if isinstance(p, Text):
                reasoning, text = split_think(p.text)
                if reasoning is not None:
                    parts[k:k + 1] = [Reasoning(reasoning)] + ([Text(text)] if text else [])
                break
    stop, matched = stop_reason_of(choice, ctx)
    usage = body.get("usage")
    return Response(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""), parts=parts, stop_reason=stop or END,
        stop_sequence=matched, usage=parse_usage(usage) if isinstance(usage, dict) else None,
        created=body.get("created") if isinstance(body.get("created"), int) else None,
    )


def render_response(resp: Response, ctx: Context) -> dict:
    texts = [p.text for p in resp.parts if isinstance(p, Text)]
    refusals = [p.text for p in resp.parts if isinstance(p, Refusal)]
    reasoning = [p.text for p in resp.parts if isinstance(p, Reasoning) and p.text]
    calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
             for p in resp.parts if isinstance(p, ToolCall)]
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None,
                     "refusal": "".join(refusals) if refusals else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if any(isinstance(p, Reasoning) and (p.signature or p.redacted is not None) for p in resp.parts):
        # Signed thinking in LiteLLM's carrier: a client that sends the message back keeps
        # Anthropic's thinking valid across a tool loop (parsed again in parse_assistant_message).
        message["thinking_blocks"] = [
            {"type": "redacted_thinking", "data": p.redacted} if p.redacted is not None
            else {"type": "thinking", "thinking": p.text, "signature": p.signature or ""}
            for p in resp.parts if isinstance(p, Reasoning)]
    if calls:
        message["tool_calls"] = calls
    out = {
        "id": resp.id, "object": "chat.completion", "created": int(time.time()) if resp.created is None else resp.created,
        "model": resp.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": FINISH_OUT.get(resp.stop_reason or END, "stop")}],
    }
    if resp.usage is not None:
        out["usage"] = render_usage(resp.usage)
    if resp.stop_reason == PAUSE:
        ctx.warn("Anthropic pause_turn reported as finish_reason stop")
    return out
