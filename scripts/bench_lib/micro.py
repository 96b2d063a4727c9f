"""Micro-benchmark of the translation layer alone: events/s per core for each protocol pair, no network.

Feeds a 200-event upstream stream (the same bytes the replay upstream sends), one SSE event per
`feed()` call as a real upstream delivers them, through `llmitm.protocols.Translation(client, upstream)
.stream()`, and counts upstream events translated per CPU second (time.process_time, one thread).
Skips cleanly with a reason while the translation facade does not exist yet.
"""

from __future__ import annotations

import argparse
import json
import re
import time

from . import shapes

STREAMS = {"openai-chat": shapes.openai_stream_events, "anthropic": shapes.anthropic_stream_events}

# Protocols without a synthetic 200-event stream: their first real plain-text recording, replayed as is.
_FIXTURE_STREAMS = {"openai-responses": "openai-responses/prism/stream-text-basic.sse",
                    "gemini": "gemini/prism/stream-text-followup.sse"}
_FIXTURE_JSON = {"openai-responses": "openai-responses/prism/text-basic.json", "gemini": "gemini/prism/text-basic.json"}


def _fixture_events(rel: str) -> list[bytes] | None:
    d = shapes._fixture_dir()
    f = d / rel if d else None
    if not f or not f.is_file():
        return None
    parts = re.split(rb"(\r?\n\r?\n)", f.read_bytes())
    events = [parts[i] + (parts[i + 1] if i + 1 < len(parts) else b"") for i in range(0, len(parts), 2)]
    return [e for e in events if e.strip()]


def upstream_streams() -> dict[str, list[bytes]]:
    out = {k: fn() for k, fn in STREAMS.items()}
    for proto, rel in _FIXTURE_STREAMS.items():
        ev = _fixture_events(rel)
        if ev:
            out[proto] = ev
    return out


def client_protocols(Translation) -> list[str]:
    try:
        from llmitm.protocols import SPOKES

        return list(SPOKES)
    except Exception:  # noqa: BLE001
        return list(STREAMS)


def _facade():
    try:
        from llmitm import protocols
    except Exception as e:  # noqa: BLE001
        return None, f"llmitm.protocols does not import: {type(e).__name__}: {e}"
    t = getattr(protocols, "Translation", None)
    if t is None:
        try:
            from llmitm.protocols import translation as mod  # type: ignore[attr-defined]

            t = getattr(mod, "Translation", None)
        except Exception:  # noqa: BLE001
            t = None
    if t is None:
        return None, "llmitm.protocols.Translation does not exist yet"
    return t, None


def bench_pair(Translation, client: str, upstream: str, seconds: float, events: list[bytes]) -> dict:
    pair = f"{upstream} upstream -> {client} client (stream)"
    try:
        tr = Translation(client, upstream)
        st = tr.stream()
    except Exception as e:  # noqa: BLE001
        return {"pair": pair, "events_per_s": None, "note": f"not supported: {type(e).__name__}: {e}"[:200]}
    # Correctness smoke: the output must be non-empty SSE.
    out = []
    for ev in events:
        out += st.feed(ev)
    out += st.finish() or []
    if not out:
        return {"pair": pair, "events_per_s": None, "note": "translator produced no output"}
    out_bytes = sum(len(b) for b in out)
    n_streams = 0
    t0 = time.process_time()
    deadline = t0 + seconds
    while True:
        st = Translation(client, upstream).stream()
        for ev in events:
            st.feed(ev)
        st.finish()
        n_streams += 1
        t = time.process_time()
        if t >= deadline or n_streams >= 100_000:
            break
    cpu = t - t0
    return {"pair": pair, "events_per_s": n_streams * len(events) / cpu, "streams": n_streams,
            "events_per_stream": len(events),
            "cpu_s": round(cpu, 3), "out_bytes_per_stream": out_bytes, "out_chunks_per_stream": len(out)}


REQUESTS = {"openai-chat": lambda: shapes.openai_request("gpt-4o", False),
            "anthropic": lambda: shapes.anthropic_request("claude-3-7-sonnet-20250219", False),
            "openai-responses": lambda: json.dumps({"model": "gpt-4o", "instructions": "You are a helpful assistant.",
                                                    "input": "What's the weather like in San Francisco?",
                                                    "max_output_tokens": 256}).encode(),
            "gemini": lambda: json.dumps({"systemInstruction": {"parts": [{"text": "You are a helpful assistant."}]},
                                          "contents": [{"role": "user", "parts": [
                                              {"text": "What's the weather like in San Francisco?"}]}],
                                          "generationConfig": {"maxOutputTokens": 256}}).encode()}


def _response_body(proto: str) -> bytes | None:
    if proto == "openai-chat":
        return shapes.openai_json()
    if proto == "anthropic":
        return shapes.anthropic_json()
    d = shapes._fixture_dir()
    f = d / _FIXTURE_JSON[proto] if d and proto in _FIXTURE_JSON else None
    return f.read_bytes() if f and f.is_file() else None


def bench_exchange(Translation, client: str, upstream: str, seconds: float) -> dict:
    """Non-stream: client request -> upstream request, upstream body -> client body, per CPU second
    (the JSON parse of the client body is included: the addon has to do it too)."""
    import json as _json

    pair = f"{client} client -> {upstream} upstream"
    req, resp = REQUESTS[client](), _response_body(upstream)
    if resp is None:
        return {"pair": pair, "exchanges_per_s": None, "note": "no recorded response body for this upstream"}
    if not hasattr(Translation, "request") or not hasattr(Translation, "response"):
        return {"pair": pair, "exchanges_per_s": None, "note": "Translation has no request()/response()"}
    try:
        t = Translation(client, upstream)
        t.request(_json.loads(req), upstream_model="bench-model")
        status, body = t.response(200, resp)
        if status != 200 or not body:
            return {"pair": pair, "exchanges_per_s": None, "note": f"response translation gave {status}"}
    except Exception as e:  # noqa: BLE001
        return {"pair": pair, "exchanges_per_s": None, "note": f"not supported: {type(e).__name__}: {e}"[:200]}
    n = 0
    t0 = time.process_time()
    deadline = t0 + seconds
    while True:
        for _ in range(50):
            t = Translation(client, upstream)
            t.request(_json.loads(req), upstream_model="bench-model")
            t.response(200, resp)
        n += 50
        now = time.process_time()
        if now >= deadline or n >= 1_000_000:
            break
    return {"pair": pair, "exchanges_per_s": n / (now - t0), "us_per_exchange": round((now - t0) / n * 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    Translation, why = _facade()
    if Translation is None:
        res = {"skipped": why}
    else:
        streams = upstream_streams()
        clients = client_protocols(Translation)
        main_pairs = {("anthropic", "openai-chat"), ("openai-chat", "anthropic")}
        pairs = []
        for client in clients:
            for upstream, events in streams.items():
                if client != upstream:
                    secs = a.seconds if (client, upstream) in main_pairs else a.seconds / 3
                    pairs.append(bench_pair(Translation, client, upstream, secs, events))
        exchanges = [bench_exchange(Translation, c, u, a.seconds / 3) for c in clients for u in clients
                     if c != u and c in REQUESTS]
        res = {"pairs": pairs, "exchanges": exchanges, "events_per_stream": shapes.STREAM_EVENTS}
    text = json.dumps(res, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
