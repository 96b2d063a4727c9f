"""Requests llmitm lets out with the app's own credential — with no config at all, on a route to a
provider without keys (a local server), and passed through where no route serves — are made by
llmitm's own client. An upstream that cannot be reached is a 502 with Retry-After in the app's
protocol (never mitmproxy's HTML error page, which no SDK can parse), whole or streamed, and the proxy
keeps serving; a reachable upstream still gets exactly what the app sent."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import Reply

# Loaded beside llmitm: the known AI hosts resolve to a closed loopback port (no packet leaves).
AI_HOSTS_ON_LOOPBACK = str(Path(__file__).with_name("ai_hosts_on_loopback.py"))
APP_KEY = "sk-app-own-key-keyless-01"
GEMINI_KEY = "AIza-app-own-key-keyless"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def closed_port():
    """A loopback port bound but never listened on: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """llmitm with no config: the known AI hosts are intercepted and sent on with the app's key."""
    with ProxyProcess(tmp_path_factory.mktemp("keyless-bare"), None, extra=["-s", AI_HOSTS_ON_LOOPBACK]) as p:
        yield p


def routed_config(upstream_url: str, closed: int) -> str:
    return f"""
state: memory
providers:
  local: {{protocol: openai-chat, base_url: "http://127.0.0.1:{closed}/v1"}}
  localclaude: {{protocol: anthropic, base_url: "http://127.0.0.1:{closed}"}}
  fake: {{protocol: openai-chat, base_url: "{upstream_url}/v1"}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["sk-ant-pool-keyless-1"]}}
routes:
  - {{match: {{host: api.openai.com, model: "local-*"}}, provider: local}}
  - {{match: {{host: api.openai.com, model: "xlate-*"}}, provider: localclaude, model: claude-x}}
  - {{match: {{host: api.openai.com, model: "gpt-*"}}, provider: fake}}
  # An app's own server on loopback: what the route's provider cannot serve passes through to it.
  - {{match: {{host: 127.0.0.1}}, provider: claude, other_endpoints: original}}
"""


@pytest.fixture(scope="module")
def routed(upstream, closed_port, tmp_path_factory):
    config = routed_config(upstream.url, closed_port)
    with ProxyProcess(tmp_path_factory.mktemp("keyless-routed"), config, extra=["-s", AI_HOSTS_ON_LOOPBACK]) as p:
        yield p


def curl(proxy: ProxyProcess, *args: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-cased names, body) of one request through `proxy`."""
    env = {"PATH": "/usr/bin:/bin", **proxy.client_env()}
    # -x, --noproxy "": curl never proxies loopback addresses otherwise.
    out = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", "-x", proxy.url, "--noproxy", "", *args], env=env,
                         capture_output=True)
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.rpartition(b"\r\n\r\n")  # the last header block (after a CONNECT's)
    lines = head.split(b"\r\n\r\n")[-1].decode().split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def assert_unreachable(status: int, headers: dict[str, str]) -> None:
    assert status == 502 and headers["content-type"] == "application/json"
    assert int(headers["retry-after"]) >= 1 and headers["x-llmitm-error"] == "upstream-unreachable"


def openai_client(proxy: ProxyProcess):
    import openai

    return openai.OpenAI(api_key=APP_KEY, max_retries=0,
                         http_client=openai.DefaultHttpxClient(proxy=proxy.url, verify=str(proxy.ca), timeout=30))


def assert_openai_sdk_gets_a_502(proxy: ProxyProcess, model: str, stream: bool) -> dict:
    import openai

    with pytest.raises(openai.InternalServerError) as info:
        openai_client(proxy).chat.completions.create(model=model, messages=CHAT["messages"], stream=stream)
    response = info.value.response
    assert_unreachable(response.status_code, {k.lower(): v for k, v in response.headers.items()})
    error = response.json()["error"]
    assert error["type"] == "server_error" and "could not be reached" in error["message"]
    return error


@pytest.mark.parametrize("stream", [False, True])
def test_no_config_openai_sdk_gets_a_json_502_with_retry_after(bare, stream):
    error = assert_openai_sdk_gets_a_502(bare, "gpt-4o", stream)
    assert APP_KEY not in json.dumps(error)


@pytest.mark.parametrize("stream", [False, True])
def test_no_config_anthropic_gets_its_own_error_shape(bare, stream):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": CHAT["messages"], "stream": stream}
    status, headers, raw = curl(bare, "-H", f"x-api-key: {APP_KEY}", "-H", "anthropic-version: 2023-06-01",
                                "--data-binary", json.dumps(body), "https://api.anthropic.com/v1/messages")
    assert_unreachable(status, headers)
    answer = json.loads(raw)
    assert answer["type"] == "error" and answer["error"]["type"] == "api_error"


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse&"])
def test_no_config_gemini_gets_its_own_error_shape(bare, method):
    sep = "" if method.endswith("&") else "?"
    url = f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:{method}{sep}key={GEMINI_KEY}"
    status, headers, raw = curl(bare, "--data-binary", json.dumps(GEMINI_BODY), url)
    assert_unreachable(status, headers)
    error = json.loads(raw)["error"]
    assert error["code"] == 502 and error["status"] and GEMINI_KEY not in error["message"]


def test_no_config_proxy_keeps_serving_after_unreachable_upstreams(bare):
    for _ in range(3):
        status, headers, _ = curl(bare, "--data-binary", json.dumps(CHAT), "https://api.openai.com/v1/chat/completions")
        assert_unreachable(status, headers)
    assert bare.proc.poll() is None and "Traceback" not in bare.log()


@pytest.mark.parametrize("stream", [False, True])
def test_a_keyless_route_to_a_closed_port_is_a_502_in_the_apps_protocol(routed, upstream, stream):
    assert_openai_sdk_gets_a_502(routed, "local-model", stream)
    assert upstream.received == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_translated_keyless_route_answers_in_the_apps_protocol_not_the_upstreams(routed, stream):
    error = assert_openai_sdk_gets_a_502(routed, "xlate-model", stream)  # Anthropic upstream, OpenAI app
    assert "could not be reached" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_pass_through_to_an_unreachable_host_is_a_502_in_the_paths_protocol(routed, stream):
    assert_openai_sdk_gets_a_502(routed, "no-route-model", stream)  # no route: passed to api.openai.com


def test_a_pass_through_to_a_closed_local_server_is_a_gemini_502(routed, closed_port):
    status, headers, raw = curl(routed, "-H", f"x-goog-api-key: {GEMINI_KEY}",
                                f"http://127.0.0.1:{closed_port}/v1beta/files")
    assert_unreachable(status, headers)
    assert json.loads(raw)["error"]["code"] == 502


def test_a_reachable_keyless_route_gets_the_apps_bytes_and_credential(routed, upstream):
    body = b'{"model": "gpt-4o",\n "messages": [{"role":"user","content":"hi"}], "x_unknown": [1.50, true]}'
    status, _, raw = curl(routed, "-H", f"authorization: Bearer {APP_KEY}", "-H", "openai-organization: org-keyless",
                          "--data-binary", body, "https://api.openai.com/v1/chat/completions")
    assert status == 200 and json.loads(raw)["choices"]
    (req,) = upstream.received
    assert req.body == body and req.key == APP_KEY and req.headers["openai-organization"] == "org-keyless"


def test_a_reachable_pass_through_gets_the_apps_request_and_streams_back(routed, upstream):
    upstream.script = lambda req: Reply.fixture("gemini/prism/stream-text-followup.sse")
    status, headers, raw = curl(routed, "-H", f"x-goog-api-key: {GEMINI_KEY}", "-H", "x-app-header: kept",
                                f"http://127.0.0.1:{upstream.port}/v1beta/files?pageSize=2&x=%2F")
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert raw.count(b"data: ") == len(Reply.fixture("gemini/prism/stream-text-followup.sse").events)
    (req,) = upstream.received
    assert req.path == "/v1beta/files?pageSize=2&x=%2F" and req.key == GEMINI_KEY and req.headers["x-app-header"] == "kept"
    assert "content-length" not in req.headers and "accept" in req.headers  # curl's own, and nothing added
    assert f"GET http://127.0.0.1:{upstream.port}/v1beta/files" in routed.log()  # through llmitm, not around it
