"""Robustness drivers for llmitm (scripts/fuzz, scripts/faults): a real llmitm subprocess, a loopback fake
upstream, and a sentinel that records — and stops — any connection mitmproxy itself would open to a
non-loopback address (a request that failed open and went on unrouted)."""
