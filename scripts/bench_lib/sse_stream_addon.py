"""The minimum any streaming proxy needs, and nothing else: pass SSE responses through as they arrive.

Used by the `bare mitmdump stream` baseline (mitmdump -s this file). Bare mitmdump without it buffers the
whole response, and `stream_large_bodies=1` would also stream requests, so mitmproxy would open the
upstream connection before `--map-remote` rewrote the address (and resolve the real provider's name).
"""


def responseheaders(flow):
    if flow.response.headers.get("content-type", "").startswith("text/event-stream"):
        flow.response.stream = True
