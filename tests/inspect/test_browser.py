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
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.fixtures import REPO
from tests.harness.proxy import claude_for_openai_apps, running_mitmweb
from tests.harness.upstream import Reply

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "llmitm-browser-test-password"
POOLED = "sk-ant-pool-browser-secret-31"
POOLED_SPARE = "sk-ant-pool-browser-secret-32"
TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the web",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                          "required": ["query"]}}}]

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (scripts/test installs it)", allow_module_level=True)


@pytest.fixture
def web(tmp_path, upstream):
    config = claude_for_openai_apps(upstream.url, [POOLED, POOLED_SPARE], ", strategy: round-robin")
    # web_password is 12's; mitmproxy 11 defers the unknown option and runs without authentication.
    columns = []
    for column in ("icon", "path", "method", "status", "size", "time", "comment"):  # the comment tells the story
        columns += ["--set", f"web_columns={column}"]
    with running_mitmweb(tmp_path, config, PASSWORD, columns) as web:
        yield web


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


def run_command(page, name: str, *arguments: str):
    """A command as mitmweb's command bar sends it (POST with the page's XSRF token)."""
    return page.evaluate("""async ([name, args]) => {
        const m = document.cookie.match(/(?:^|; )(?:_mitmproxy_xsrf|_xsrf)=([^;]*)/);
        const r = await fetch("/commands/" + name, {method: "POST", body: JSON.stringify({arguments: args}),
            headers: {"Content-Type": "application/json", "X-XSRFToken": m ? decodeURIComponent(m[1]) : ""}});
        return await r.json();
    }""", [name, list(arguments)])


def pick_view(page, name: str) -> None:
    page.get_by_text("View:").click()
    page.get_by_role("link", name=name, exact=True).click()
    page.locator(".contentview .controls", has_text=name).wait_for(timeout=15000)


def test_a_streamed_tool_call_reads_as_a_transcript_in_mitmweb(web, upstream, tmp_path):

    proxy, base = web
    answered: list[str] = []

    def first_key_rate_limited_once(req):
        answered.append(req.key)
        if len(answered) == 1:  # the first call is rate-limited: llmitm retries it on the other key
            return Reply.json(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        return Reply.fixture("anthropic-messages/prism/stream-text-then-tool-use.sse")

    upstream.script = first_key_rate_limited_once
    client = proxy.sdk_client("openai", "sk-app-browser-own-key")
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
            flow_list = page.locator(".flow-table").inner_text()
            rows.first.click()  # the whole comment: the flow list cuts it to the column
            page.get_by_text("Comment", exact=True).last.click()
            page.get_by_text("2 attempts:", exact=False).first.wait_for(timeout=15000)
            page.screenshot(path=str(shots / f"mitmweb{line}-flow-list-story.png"))

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

            # The same translated flow, its app and upstream sides compared field by field.
            page.set_viewport_size({"width": 2300, "height": 1250})
            rows.first.click()
            page.get_by_text("Request", exact=True).click()
            pick_view(page, "llmitm: translation")
            comparison = transcript_text(page)
            page.screenshot(path=str(shots / f"mitmweb{line}-translation-request-comparison.png"))
            page.get_by_text("Response", exact=True).click()
            pick_view(page, "llmitm: translation")
            answers = transcript_text(page)
            page.screenshot(path=str(shots / f"mitmweb{line}-translation-response-comparison.png"))
            exported = run_command(page, "llmitm.export", "~u chat/completions", str(tmp_path / "captured"))
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
    assert any(row.startswith("claude#2") for row in stats["value"])  # claude#1 cools down after its 429
    assert "claude" in "\n".join(keys["value"])
    retried = next(f for f in app_flows if "2 attempts" in f["comment"])
    assert retried["marked"] == "🔁"  # mitmweb sends the emoji for ":repeat:" (a tofu box without an emoji font)
    assert "2 attempts: claude/" in flow_list and "429, retried" in flow_list
    assert "route #0 → claude/claude-sonnet-4-5 (app asked for gpt-4o) (anthropic)" in flow_list
    assert "TTFT " in flow_list and "tokens: 465 in (0 cached), 96 out" in flow_list
    assert "requests: app speaks OpenAI Chat Completions, upstream Anthropic Messages (translated)" in comparison
    assert "model: changed" in comparison and "max_tokens (as max_tokens → max_tokens)" not in comparison
    assert "tools: kept" in comparison and "what the app sent" in comparison and "what went upstream" in comparison
    assert "responses: app speaks OpenAI Chat Completions" in answers and "stop_reason: kept" in answers
    assert "what the upstream answered, 200" in answers and "event: message_start" not in answers

    # Capture → regression test: the exported streamed flows replay through a real llmitm to the same answer.
    written = [line for line in exported["value"] if line.startswith("wrote ")]
    assert len(written) == 2, exported
    replayed = subprocess.run([sys.executable, "-m", "llmitm.cli", "replay", str(tmp_path / "captured")],
                              capture_output=True, text=True, timeout=240,
                              env={**os.environ, "PYTHONPATH": str(REPO / "addons")})
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.count(": same") == 2
    captured = "".join(p.read_text(errors="replace") for p in (tmp_path / "captured").rglob("*") if p.is_file())
    assert POOLED not in captured and POOLED_SPARE not in captured and "sk-app-browser-own-key" not in captured
    page_text = answer + prompt + comparison + answers + json.dumps([stats, keys])
    assert POOLED not in page_text and "sk-app-browser-own-key" not in page_text
    assert POOLED not in flow_list and POOLED_SPARE not in flow_list and POOLED_SPARE not in page_text
