"""A scripted model on loopback for real coding agents: one tool call, then an answer built from the
tool's output.

The agent (Claude Code, Codex, Gemini CLI) is asked to tell the token written in a file of its
workspace. The model answers the first turn with a call to the agent's own file-reading tool (or its
shell tool, `cat FILE`), and the turn that carries the tool's result with the token read *from that
result*: the agent can only print the token if the whole tool loop went through the proxy and back.
Requests that carry no tools (titles, routing, "who speaks next" checks) get a short text, or a
minimal instance of the JSON schema they ask for.

It speaks whichever protocol the path says (agent_wire.py), checks every request the way the real API
does, and answers a refusal in that protocol's error format, so a translation the real API would
refuse fails here too. It also refuses any credential but the pooled key: the app's own key must never
arrive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import agent_wire, agent_wire_openai
from .agent_wire import Answer, Conversation, Rejected, Text, ToolCall
from .upstream import FakeUpstream, Received, Reply, protocol_of

PATH_PROPERTIES = ("file_path", "absolute_path", "path")
MODEL_PATHS = ("/v1/messages", "/chat/completions", "/responses", ":generateContent", ":streamGenerateContent")
SHELL_TOOLS = ("Bash", "shell", "shell_command", "exec_command", "run_shell_command")


class ScriptedAgentUpstream(FakeUpstream):
    def __init__(self, token: str, token_file: Path, pooled_key: str):
        super().__init__()
        self.token, self.token_file, self.pooled_key = token, token_file, pooled_key
        signatures: set[str] = set()
        self.wire = {"anthropic": agent_wire.Anthropic(signatures), "openai-chat": agent_wire_openai.OpenAIChat(),
                     "openai-responses": agent_wire_openai.OpenAIResponses(set()), "gemini": agent_wire.Gemini(signatures)}
        self.rejections: list[str] = []  # what was refused, for the test's failure message
        self.answers: list[str] = []  # one line per answered request
        self.other_paths: list[str] = []  # requests to paths that are no model call
        self.script = self.answer

    def answer(self, req: Received) -> Reply:
        wire = self.wire[protocol_of(req.path)]
        bare = req.path.split("?", 1)[0]
        if bare.endswith("/messages/count_tokens"):
            return Reply.json(200, {"input_tokens": 42})
        if req.method != "POST" or not bare.endswith(MODEL_PATHS):  # e.g. Claude Code's /api/claude_code/settings: the real API's 404
            self.other_paths.append(req.path)
            return wire.error(404, f"Not found: {bare}")
        if req.key != self.pooled_key:
            self.rejections.append(f"{req.path}: credential is not the pooled key")
            return wire.error(401, "invalid x-api-key")
        try:
            body = req.json
            conv = wire.read(body, req.path)
        except Rejected as e:
            self.rejections.append(f"{req.path}: {e}")
            return wire.error(e.status, str(e))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.rejections.append(f"{req.path}: malformed request: {e!r}")
            return wire.error(400, f"malformed request: {e}")
        answer = self.decide(conv)
        self.answers.append(f"{wire.name} {'stream' if conv.stream else 'whole'}: {describe(answer)}")
        return wire.render(answer, conv, wants_thinking(wire.name, body))

    def decide(self, conv: Conversation) -> Answer:
        if conv.tool_results:
            if any(self.token in result for result in conv.tool_results):
                return Text(f"The token is {self.token}.")
            return Text("The tool's output did not hold the token: " + conv.tool_results[-1][:300])
        if conv.response_schema:
            return Text(json.dumps(instance_of(conv.response_schema)))
        return self.read_file_call(conv) or Text("OK.")

    def read_file_call(self, conv: Conversation) -> ToolCall | None:
        """The agent's own file-reading tool if it has one, else its shell tool running `cat`."""
        path, tools = str(self.token_file), conv.tools
        for name, schema in tools.items():
            props = schema.get("properties") or {}
            prop = next((p for p in PATH_PROPERTIES if p in props), None)
            if "read" in name.lower() and prop and "many" not in name.lower():
                return ToolCall(name, {prop: path})
        for name in tools:  # Codex (0.17x): commands only through `exec`, JavaScript calling tools.exec_command
            if name.split("__")[-1] == "exec":
                script = f"const r = await tools.exec_command({{cmd: {json.dumps('cat ' + path)}}});\ntext(r.output);"
                return self.with_input(name, script, conv)
        for name in SHELL_TOOLS:
            if name in tools:
                props = tools[name].get("properties") or {}
                if "cmd" in props:
                    return ToolCall(name, {"cmd": f"cat {path}"})
                command = props.get("command") or {}
                if str(command.get("type", "")).lower() == "array":
                    return ToolCall(name, {"command": ["cat", path]})
                return ToolCall(name, {"command": f"cat {path}"})
        return None


    @staticmethod
    def with_input(name: str, text: str, conv: Conversation) -> ToolCall:
        """A call passing free text: as a custom tool's input, or in the one string property of a
        function that a translation made of a custom tool."""
        namespace = conv.namespaces.get(name)
        if name in conv.custom_tools:
            return ToolCall(name, {}, custom_input=text, namespace=namespace)
        props = conv.tools[name].get("properties") or {}
        prop = next((p for p, v in props.items() if v.get("type") == "string"), "input")
        return ToolCall(name, {prop: text}, namespace=namespace)


def wants_thinking(protocol: str, body: dict) -> bool:
    """Whether the real model would answer with signed reasoning the client must send back."""
    if protocol == "anthropic":
        return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if protocol == "openai-responses":
        return bool(body.get("reasoning")) and "reasoning.encrypted_content" in (body.get("include") or [])
    return False


def instance_of(schema: Any) -> Any:
    """A minimal value of a JSON (or Gemini upper-case) schema. Enums take "user" when offered, so a
    "who speaks next" check hands the turn back to the user and the agent stops."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return "user" if "user" in schema["enum"] else schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: instance_of(props[name]) for name in schema.get("required") or props}
    return {"string": "x", "integer": 0, "number": 0, "boolean": False, "array": []}.get(kind)


def describe(answer: Answer) -> str:
    if isinstance(answer, ToolCall):
        return f"tool call {answer.name}({json.dumps(answer.arguments)})"
    return f"text {answer.text[:80]!r}"
