"""mitmweb in a real browser: an OpenAI app's streamed tool call, translated to an Anthropic upstream by
a real `llmitm web`, read back as the llmitm transcript from the page headless Chromium renders.

Needs Debian's `chromium` (scripts/test installs it) and Playwright's Python package; Playwright never
downloads a browser here: it drives /usr/bin/chromium. Set LLMITM_SCREENSHOT_DIR to keep the PNGs
(docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import Reply

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "llmitm-browser-test-password"
POOLED = "sk-ant-pool-browser-secret-31"
TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the web",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                          "required": ["query"]}}}]

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (scripts/test installs it)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(tmp_path, upstream):
    port = free_port()
    config = f"""
state: memory
providers:
  claude: {{protocol: anthropic, base_url: "{upstream.url}", keys: ["{POOLED}"]}}
routes:
  - {{match: {{host: api.openai.com}}, provider: claude, model: claude-sonnet-4-5}}
"""
    # web_password is 12's; mitmproxy 11 defers the unknown option and runs without authentication.
    extra = ["--set", "web_open_browser=false", "--set", f"web_port={port}", "--set", f"web_password={PASSWORD}"]
    with ProxyProcess(tmp_path, config, extra=extra, mode="web") as proxy:
        yield proxy, f"http://127.0.0.1:{port}"


def conversation(system: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": "When do the Detroit Tigers play today?"}]


def wait_for_flows(base: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 15
    while True:
        flows = httpx.get(base + "/flows", headers={"authorization": f"Bearer {PASSWORD}"}, trust_env=False, timeout=10).json()
        if len(flows) >= count or time.monotonic() > deadline:
            return flows
        time.sleep(0.2)


def pick_llmitm_view(page) -> None:
    """Choose the view by name from the content view menu, as a person would."""
    page.get_by_text("View:").click()
    page.get_by_role("link", name="llmitm", exact=True).click()
    page.locator(".contentview .controls", has_text="llmitm").wait_for(timeout=15000)


def transcript_text(page) -> str:
    pre = page.locator(".contentview pre").last
    pre.get_by_text("──", exact=False).first.wait_for(timeout=15000)
    return pre.inner_text()


def run_command(page, name: str):
    """A command as mitmweb's command bar sends it (POST with the page's XSRF token)."""
    return page.evaluate("""async (name) => {
        const m = document.cookie.match(/(?:^|; )(?:_mitmproxy_xsrf|_xsrf)=([^;]*)/);
        const r = await fetch("/commands/" + name, {method: "POST", body: JSON.stringify({arguments: []}),
            headers: {"Content-Type": "application/json", "X-XSRFToken": m ? decodeURIComponent(m[1]) : ""}});
        return await r.json();
    }""", name)


def test_a_streamed_tool_call_reads_as_a_transcript_in_mitmweb(web, upstream, tmp_path):
    import openai

    proxy, base = web
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-then-tool-use.sse")
    client = openai.OpenAI(api_key="sk-app-browser-own-key", max_retries=0,
                           http_client=openai.DefaultHttpxClient(proxy=proxy.url, verify=str(proxy.ca), timeout=30))
    first = list(client.chat.completions.create(model="gpt-4o", stream=True, tools=TOOLS,
                                                messages=conversation("You search. Today is Monday.")))
    call = next(c.choices[0].delta.tool_calls[0] for c in first if c.choices and c.choices[0].delta.tool_calls)
    # The app comes back with the tool's result, but its template re-rendered the system prompt.
    history = conversation("You search. Today is Tuesday.") + [
        {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                                              "function": {"name": "search", "arguments": '{"query": "Tigers"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "Tigers vs. Guardians, 7:10 pm"}]
    list(client.chat.completions.create(model="gpt-4o", stream=True, tools=TOOLS, messages=history))

    flows = wait_for_flows(base, 4)
    app_flows = [f for f in flows if f["request"]["path"] == "/v1/chat/completions"]
    assert len(app_flows) == 2
    shots = Path(os.environ.get("LLMITM_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    line = "12" if "web_password" in httpx.get(base + "/options.json", headers={"authorization": f"Bearer {PASSWORD}"},
                                               trust_env=False, timeout=10).text else "11"

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1150})
            page.goto(f"{base}/?token={PASSWORD}")
            rows = page.get_by_text("https://api.openai.com/v1/chat/completions")
            rows.first.wait_for(timeout=15000)

            rows.first.click()  # the first request: its streamed answer
            page.get_by_text("Response", exact=True).click()
            pick_llmitm_view(page)
            answer = transcript_text(page)
            page.screenshot(path=str(shots / f"mitmweb{line}-streamed-tool-call-response.png"))

            rows.nth(1).click()  # the second request: the tool result, and a changed system prompt
            page.get_by_text("Request", exact=True).click()
            pick_llmitm_view(page)
            prompt = transcript_text(page)
            page.screenshot(path=str(shots / f"mitmweb{line}-request-prefix-change.png"))
            stats = run_command(page, "llmitm.stats")
            keys = run_command(page, "llmitm.keys")
        finally:
            browser.close()

    assert "OpenAI Chat Completions response (app's side)" in answer
    assert "streamed: 18 events" in answer and "chat.completion.chunk ×17" in answer
    assert "→ tool call search" in answer and '"query": "Detroit Tigers baseball game today time schedule"' in answer
    assert "stop reason: tool_use" in answer
    assert "time to first byte (response headers):" in answer

    assert "OpenAI Chat Completions request" in prompt
    assert "search(query: string*) — Search the web" in prompt
    assert "← tool result for" in prompt and "Tigers vs. Guardians" in prompt
    assert f"prefix differs at: system, character {len('You search. Today is ')}" in prompt
    route = next(row for row in stats["value"] if row.startswith("#0 → claude (anthropic)"))
    assert route.split()[4:6] == ["2", "0"]  # two requests, no error
    assert any(row.startswith("claude#1") for row in stats["value"])
    assert "claude" in "\n".join(keys["value"])
    page_text = answer + prompt + json.dumps([stats, keys])
    assert POOLED not in page_text and "sk-app-browser-own-key" not in page_text
