"""Local OpenAI-compatible servers running open models (vLLM, SGLang, llama.cpp, Ollama,
`transformers serve`; SmolLM3 and other Hermes/Qwen3-style templates): PROTOCOLS.md §5.

The upstream speaks OpenAI Chat, but the model's conventions leak through it: reasoning is switched
by `chat_template_kwargs.enable_thinking` and/or a `/think` `/no_think` flag in the system prompt,
reasoning may come back as `<think>…</think>` text and tool calls as `<tool_call>{…}</tool_call>` text
when the server runs without parsers. `LocalModelSpoke` wraps the openai-chat spoke so the hub sees
native reasoning and tool calls whatever the client protocol:

- request: reasoning on/off from the canonical `ReasoningConfig` (never `reasoning_effort`, which many
  local servers reject), content arrays of text flattened to strings, and with `tool_call_tags`
  earlier tool calls written into the assistant text the way the model writes them;
- response (stream and not): `<think>` split by the openai-chat spoke (`think_tags.py`), then
  `<tool_call>` blocks in the answer text (never in reasoning) turned into tool-call parts.

The config object only needs the attributes of `llmitm.config.LocalModelConfig`: think_tags,
tool_call_tags, reasoning_switch ("none" | "chat_template_kwargs" | "smollm3"), thinking_default.
"""

from __future__ import annotations

import ast
import json
import re
import time
from typing import Any

from .. import openai_chat
from ..canonical import (
    TEXT,
    TOOL_CALL,
    ApiError,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
    Request,
    Response,
    Text,
    ToolCall,
    as_dict,
    new_id,
)

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# A call body longer than this is not a call the model meant (or a runaway): kept as text.
MAX_CALL_CHARS = 1024 * 1024
# While a call's text is held back, a keep-alive goes to the app at most this often.
KEEPALIVE_SECONDS = 10.0
# SmolLM3's template reads these as switches anywhere in the first system message (substring test).
_FLAG_RE = re.compile(r"/(?=no_think|think|system_override)")
_NEUTRAL = "/\u200b"  # a zero-width space after the slash: reads the same, no longer a switch


# ---------------------------------------------------------------------------------------------
# Reasoning switch


def thinking_wanted(req: Request, cfg: Any, ctx: Context) -> bool:
    """On or off for this request (PROTOCOLS.md §5.1): effort none/minimal or an explicit disable
    (or a zero budget) → off, any other request for reasoning → on, nothing said → the default.
    A local model's thinking is only on or off: effort levels and budgets are warned about."""
    r = req.reasoning
    if r is None:
        return bool(cfg.thinking_default)
    if not r.enabled or r.effort in ("none", "minimal") or r.budget_tokens == 0:
        return False
    if r.budget_tokens:
        ctx.warn(f"thinking budget {r.budget_tokens} not enforced (the local model's thinking is only on or off)")
    elif r.effort:
        ctx.warn(f"reasoning effort {r.effort!r} not honoured (the local model's thinking is only on or off)")
    return True


def neutralise_flags(text: str) -> str:
    """Client text with SmolLM3's `/think`, `/no_think`, `/system_override` made inert (a URL such as
    https://example.com/thinking would otherwise switch the mode)."""
    return _FLAG_RE.sub(_NEUTRAL, text)


# ---------------------------------------------------------------------------------------------
# Request


def _flatten(content: Any) -> Any:
    """A content array of text parts → one string (SmolLM3's template renders lists as ""; vLLM
    joins text parts with a newline too). Arrays with images or files are left alone."""
    if isinstance(content, list) and content and all(isinstance(p, dict) and p.get("type") == "text"
                                                     for p in content):
        return "\n".join(str(p.get("text") or "") for p in content)
    return content


def tool_call_markup(name: str, arguments: str) -> str:
    """A tool call as the model writes it (Hermes format): arguments as a JSON object."""
    try:
        args: Any = json.loads(arguments) if arguments and arguments.strip() else {}
    except ValueError:
        args = arguments  # not JSON: the text as it was produced
    return OPEN + "\n" + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + "\n" + CLOSE


def _calls_into_text(msg: dict) -> None:
    calls = msg.pop("tool_calls", None) or []
    fns = [as_dict(c.get("function")) for c in calls if isinstance(c, dict)]
    markup = [tool_call_markup(as_str(fn.get("name")), as_str(fn.get("arguments"))) for fn in fns]
    text = msg.get("content")
    text = text if isinstance(text, str) else ""
    msg["content"] = "\n".join(([text] if text else []) + markup)


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _system_first(messages: list[dict]) -> dict:
    """messages[0] as a system message with string content (the only one SmolLM3's template reads)."""
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = _flatten(messages[0].get("content"))
        if isinstance(messages[0]["content"], str):
            return messages[0]
    messages.insert(0, {"role": "system", "content": ""})
    return messages[0]


def _append(text: str, addition: str) -> str:
    return f"{text.rstrip()}\n{addition}" if text.strip() else addition


def adapt_request(req: Request, out: dict, cfg: Any, ctx: Context, extras: dict | None = None) -> dict:
    """Adjust the openai-chat body `out` rendered from `req` for a local server with conventions `cfg`.
    `extras`: fields an OpenAI-Chat app sent that the hub has no place for (the server's own
    extensions: chat_template_kwargs, top_k, min_p, …), passed on as they were."""
    out.pop("reasoning_effort", None)  # many local servers reject it; the switch below replaces it
    extras = dict(extras or {})
    app_kwargs = as_dict(extras.pop("chat_template_kwargs", None))
    out.update(extras)
    if "max_completion_tokens" in out:  # the field every local server reads
        out["max_tokens"] = out.pop("max_completion_tokens")
    messages: list[dict] = out.get("messages") or []
    for m in messages:
        m["content"] = _flatten(m.get("content"))
    switch = cfg.reasoning_switch
    if switch == "none":
        if req.reasoning is not None:
            ctx.warn("reasoning on/off not sent to the local model (local_model.reasoning_switch is none)")
    else:
        out.setdefault("chat_template_kwargs", {})["enable_thinking"] = thinking_wanted(req, cfg, ctx)
    if app_kwargs:  # the app's own template switches win: it knows its server
        out["chat_template_kwargs"] = {**out.get("chat_template_kwargs", {}), **app_kwargs}

    tools_sent = bool(out.get("tools"))
    choice = out.get("tool_choice")
    if cfg.tool_call_tags:
        for m in messages:
            if m.get("role") == "assistant" and m.get("tool_calls"):
                _calls_into_text(m)
        if tools_sent and choice == "none":
            # The model sees no tools rather than tools it must not call.
            for key in ("tools", "tool_choice", "parallel_tool_calls"):
                out.pop(key, None)
            tools_sent = False
    if tools_sent and cfg.tool_call_tags and choice not in (None, "auto"):
        # Without a server-side parser nothing enforces a forced choice: say it to the model.
        name = as_str(as_dict(as_dict(choice).get("function")).get("name"))
        system = _system_first(messages)
        system["content"] = _append(system["content"], "You must call one of the tools in this answer."
                                    if choice == "required" else f"You must call the tool {name} in this answer.")
        ctx.warn("tool_choice also stated as an instruction in the system prompt (the model may still not call a tool)")
    if switch == "smollm3":
        system = _system_first(messages)
        clean = neutralise_flags(system["content"])
        if clean != system["content"]:
            ctx.warn("/think, /no_think or /system_override in the system prompt made inert (SmolLM3 reads them "
                     "as switches)")
        if tools_sent:  # the template's own tool block, for servers that do not hand it `tools`
            out["chat_template_kwargs"].setdefault("xml_tools", [t["function"] for t in out["tools"]])
        flag = "/think" if out["chat_template_kwargs"].get("enable_thinking", True) else "/no_think"
        system["content"] = _append(clean, flag)
    out["messages"] = messages
    return out


# ---------------------------------------------------------------------------------------------
# <tool_call> text → tool calls


def _strip_fence(s: str) -> str:
    s = s.strip()
    if s.startswith("```"):
        s = s[3:]
        s = s[s.find("\n") + 1:] if "\n" in s else ""
        s = s.removesuffix("```")
    return s.strip()


def _close_open(s: str) -> str:
    """`s` with unterminated strings, objects and arrays closed (output cut off mid-call)."""
    stack: list[str] = []
    in_str = escaped = False
    for ch in s:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    if escaped:
        s = s[:-1]
    return s + ('"' if in_str else "") + "".join(reversed(stack))


def _loads_lenient(s: str) -> Any:
    s = _strip_fence(s)
    if not s:
        raise ValueError("empty")
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return json.JSONDecoder().raw_decode(s)[0]  # trailing garbage after the object
    except ValueError:
        pass
    repaired = re.sub(r",\s*([}\]])", r"\1", _close_open(s))  # cut off / trailing commas
    try:
        return json.loads(repaired)
    except ValueError:
        pass
    if len(s) <= 100_000:  # Python literals: the template shows tools as Python dicts
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise ValueError("not JSON")


def parse_calls(body: str) -> list[tuple[str, str]] | None:
    """The (name, arguments JSON text) calls in the text between <tool_call> tags, or None when
    it is not a call (kept as text by the caller)."""
    try:
        value = _loads_lenient(body)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return None
        fn: dict = item["function"] if isinstance(item.get("function"), dict) else item  # OpenAI-shaped too
        name = fn.get("name")
        args = fn.get("arguments", fn.get("parameters"))
        if not isinstance(name, str) or not name:
            return None
        if args is None:
            args = {}
        if isinstance(args, str):  # arguments as a JSON string
            try:
                args = _loads_lenient(args) if args.strip() else {}
            except ValueError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append((name, json.dumps(args, ensure_ascii=False)))
    return calls or None


def _partial_open(text: str) -> int:
    """Length of the longest suffix of `text` that could be the start of OPEN."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


class ToolCallScanner:
    """Answer text in, in pieces of any size → ("text", str) and ("call", ToolCall) items, with the
    `<tool_call>` markup never shown as text. Holds back at most a partial open tag plus trailing
    whitespace (whitespace next to a tag is dropped) and the body of an open call."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._in_call = False
        self._buf = ""
        self._after_tag = False  # drop the whitespace that follows a closing tag
        self._ws = ""  # whitespace dropped before the open tag
        self._searched = 0  # how much of an open call's body is known to hold no CLOSE

    @property
    def in_call(self) -> bool:
        return self._in_call

    def feed(self, text: str) -> list[tuple[str, Any]]:
        self._buf += text
        out: list[tuple[str, Any]] = []
        while True:
            if self._in_call:
                end = self._buf.find(CLOSE, self._searched)
                if end < 0:
                    self._searched = max(0, len(self._buf) - len(CLOSE) + 1)  # long calls: no rescans
                    if len(self._buf) > MAX_CALL_CHARS:
                        self.ctx.warn("<tool_call> block too long: kept as text")
                        self._in_call = False
                        self._emit_text(("" if self._after_tag else self._ws) + OPEN + self._buf, out)
                        self._buf = ""
                    return out
                body, self._buf = self._buf[:end], self._buf[end + len(CLOSE):]
                self._in_call = False
                self._call(body, out, closed=True)
                continue
            start = self._buf.find(OPEN)
            if start >= 0:
                before = self._buf[:start].rstrip()
                self._ws = self._buf[len(before):start]  # given back if this is not a call
                self._emit_text(before, out)
                self._buf = self._buf[start + len(OPEN):]
                self._in_call = True
                self._searched = 0
                continue
            keep = _partial_open(self._buf)
            head = self._buf[:len(self._buf) - keep]
            body = head.rstrip()  # trailing whitespace waits: a tag may follow
            self._emit_text(body, out)
            self._buf = self._buf[len(body):]
            return out

    def flush(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        buf, self._buf = self._buf, ""
        if self._in_call:
            self._in_call = False
            self._call(buf, out, closed=False)
        else:
            self._emit_text(buf, out)
        return out

    def _emit_text(self, text: str, out: list) -> None:
        if self._after_tag:
            text = text.lstrip()
            if not text:
                return
            self._after_tag = False
        if text:
            out.append(("text", text))

    def _call(self, body: str, out: list, *, closed: bool) -> None:
        calls = parse_calls(body)
        if calls is None:
            self.ctx.warn("<tool_call> text that is not a valid call kept as text")
            out.append(("text", ("" if self._after_tag else self._ws) + OPEN + body + (CLOSE if closed else "")))
            self._after_tag = False
            return
        if not closed:
            self.ctx.warn("unterminated <tool_call> read as a tool call")
        for name, args in calls:
            out.append(("call", ToolCall(new_id("call_"), name, args)))
        self._after_tag = True


def scan_parts(parts: list, ctx: Context) -> list:
    """A complete response's parts with `<tool_call>` markup in Text parts turned into ToolCalls."""
    out: list = []
    for p in parts:
        if not isinstance(p, Text) or OPEN not in p.text:
            out.append(p)
            continue
        scanner = ToolCallScanner(ctx)
        for kind, value in scanner.feed(p.text) + scanner.flush():
            if kind == "call":
                out.append(value)
            elif out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + value)
            else:
                out.append(Text(value))
    return out


# ---------------------------------------------------------------------------------------------
# Context overflow (PROTOCOLS.md §5.5): each server words it its own way; apps recognise Anthropic's
# wording (Claude Code compacts on "prompt is too long", lowers max_tokens on the other) and OpenAI's
# code `context_length_exceeded`.

_OVERFLOW_RE = re.compile(r"context (?:length|size|window)|exceed_context_size|prompt is too long", re.I)
_CTX_RES = (re.compile(r"maximum context length is (\d+)"), re.compile(r"context length \((\d+) tokens\)"))
_INPUT_RES = (re.compile(r"(\d+) in the messages"), re.compile(r"has (\d+) input tokens"),
              re.compile(r"input \((\d+) tokens\)"))
_OUTPUT_RES = (re.compile(r"(\d+) in the completion"), re.compile(r"is too large: (\d+)"))


def _first_int(patterns: tuple, text: str, extra: Any = None) -> int | None:
    if isinstance(extra, int) and not isinstance(extra, bool):
        return extra
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    return None


def context_overflow(err: ApiError, body: bytes) -> ApiError:
    """A local server's "context exceeded" error in the words apps act on; other errors unchanged.
    vLLM, SGLang and llama.cpp (`exceed_context_size_error` with n_prompt_tokens/n_ctx) wordings."""
    if not 400 <= err.status < 500 or not _OVERFLOW_RE.search(f"{err.message} {err.type} {err.code}"):
        return err
    try:
        detail = as_dict(as_dict(json.loads(body)).get("error"))
    except ValueError:
        detail = {}
    ctx_len = _first_int(_CTX_RES, err.message, detail.get("n_ctx"))
    prompt = _first_int(_INPUT_RES, err.message, detail.get("n_prompt_tokens"))
    output = _first_int(_OUTPUT_RES, err.message)
    if prompt is not None and ctx_len is not None and output is not None and prompt < ctx_len:
        message = (f"input length and `max_tokens` exceed context limit: {prompt} + {output} > {ctx_len}, "
                   "decrease input length or `max_tokens` and try again")
    elif prompt is not None and ctx_len is not None:
        message = f"prompt is too long: {prompt} tokens > {ctx_len} maximum"
    else:
        message = "prompt is too long"
    if err.message and not err.message.lower().startswith("prompt is too long"):
        message += f" (local server: {err.message})"
    return ApiError(400, message, "invalid_request_error", err.param, "context_length_exceeded")


# ---------------------------------------------------------------------------------------------
# The spoke wrapper


class ScanningStreamParser:
    """The openai-chat stream parser with its answer text run through a ToolCallScanner; block
    indexes renumbered so the calls found in text take their place in the stream."""

    def __init__(self, ctx: Context, cfg: Any):
        self.ctx = ctx
        self._inner = openai_chat.StreamParser(ctx, think_tags=cfg.think_tags)
        self._scan = bool(cfg.tool_call_tags)
        self._next = 0
        self._map: dict[int, int] = {}  # inner block index → ours
        self._text_inner: int | None = None  # the inner text block being scanned
        self._text_open: int | None = None  # our open text block
        self._scanner: ToolCallScanner | None = None
        self._last_out = time.monotonic()

    def comment(self, text: str) -> list:
        return self._inner.comment(text)

    def feed(self, event: str | None, data: str) -> list:
        events = self._inner.feed(event, data)
        if not self._scan:
            return events
        out: list = []
        for ev in events:
            cls = ev.__class__
            if cls is BlockStart:
                if ev.kind == TEXT:
                    self._text_inner = ev.index
                    self._scanner = ToolCallScanner(self.ctx)
                else:
                    self._map[ev.index] = self._new()
                    out.append(BlockStart(self._map[ev.index], ev.kind, ev.id, ev.name, ev.data))
            elif cls is Delta:
                if ev.index == self._text_inner and self._scanner is not None:
                    self._items(self._scanner.feed(ev.text), out)
                elif ev.index in self._map:
                    out.append(Delta(self._map[ev.index], ev.text))
            elif cls is BlockStop:
                if ev.index == self._text_inner and self._scanner is not None:
                    self._items(self._scanner.flush(), out)
                    self._close_text(out)
                    self._text_inner = self._scanner = None
                elif ev.index in self._map:
                    out.append(BlockStop(self._map[ev.index]))
            elif hasattr(ev, "index"):  # SignatureDelta
                if ev.index in self._map:
                    ev.index = self._map[ev.index]
                    out.append(ev)
            else:
                out.append(ev)
        now = time.monotonic()
        if out:
            self._last_out = now
        elif self._scanner is not None and self._scanner.in_call and now - self._last_out >= KEEPALIVE_SECONDS:
            # A long call is held back whole: keep the app's connection visibly alive meanwhile.
            self._last_out = now
            out.append(KeepAlive())
        return out

    def _new(self) -> int:
        index = self._next
        self._next += 1
        return index

    def _close_text(self, out: list) -> None:
        if self._text_open is not None:
            out.append(BlockStop(self._text_open))
            self._text_open = None

    def _items(self, items: list, out: list) -> None:
        for kind, value in items:
            if kind == "text":
                if self._text_open is None:
                    self._text_open = self._new()
                    out.append(BlockStart(self._text_open, TEXT))
                out.append(Delta(self._text_open, value))
            else:
                self._close_text(out)
                index = self._new()
                out.append(BlockStart(index, TOOL_CALL, id=value.id, name=value.name))
                out.append(Delta(index, value.arguments))
                out.append(BlockStop(index))


class LocalModelSpoke:
    """The openai-chat spoke for a local server with model conventions `cfg`; everything not
    overridden here is the openai-chat module's."""

    def __init__(self, base: Any, cfg: Any):
        self._base = base
        self.cfg = cfg
        self.extras: dict = {}  # set by PassThroughChatClient

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def render_request(self, req: Request, ctx: Context) -> dict:
        out = self._base.render_request(req, ctx)
        if "top_k" in self.extras:
            _unwarn(ctx, "top_k dropped")
        return adapt_request(req, out, self.cfg, ctx, self.extras)

    def parse_response(self, body: dict, ctx: Context) -> Response:
        resp = self._base.parse_response(body, ctx, think_tags=self.cfg.think_tags)
        if self.cfg.tool_call_tags:
            resp.parts = scan_parts(resp.parts, ctx)
        return resp

    def parse_error(self, status: int | None, body: bytes) -> ApiError:
        return context_overflow(self._base.parse_error(status, body), body)

    def StreamParser(self, ctx: Context) -> ScanningStreamParser:  # noqa: N802 (the spoke interface's name)
        return ScanningStreamParser(ctx, self.cfg)


def _unwarn(ctx: Context, prefix: str) -> None:
    """Withdraw warnings about something that is passed on after all."""
    ctx.warnings[:] = [w for w in ctx.warnings if not w.startswith(prefix)]


class PassThroughChatClient:
    """An OpenAI-Chat app on a local OpenAI-Chat server: what the hub has no field for (the server's
    own extensions) is passed on unchanged instead of dropped, as if the app talked to it directly."""

    def __init__(self, base: Any, upstream: LocalModelSpoke):
        self._base = base
        self._upstream = upstream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def parse_request(self, body: dict, ctx: Context) -> Request:
        req = self._base.parse_request(body, ctx)
        extras = {k: v for k, v in body.items() if k not in openai_chat._KNOWN_REQUEST_KEYS and v is not None}
        if body.get("top_k") is not None:
            extras["top_k"] = body["top_k"]
        for key in extras:
            _unwarn(ctx, f"request field {key!r} dropped")
        self._upstream.extras = extras
        return req


def wrap(client: Any, upstream: Any, cfg: Any, ctx: Context) -> tuple[Any, Any]:
    """The (client, upstream) spokes to use for a provider with `local_model` settings `cfg`
    (None: unchanged)."""
    if cfg is None:
        return client, upstream
    if upstream.NAME != openai_chat.NAME:
        ctx.warn(f"local_model settings ignored: they apply to an openai-chat upstream, not {upstream.NAME}")
        return client, upstream
    up = LocalModelSpoke(upstream, cfg)
    if client.NAME == openai_chat.NAME:
        client = PassThroughChatClient(client, up)
    return client, up
