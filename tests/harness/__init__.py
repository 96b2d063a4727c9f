"""End-to-end test harness: a replaying loopback upstream and a real llmitm/mitmdump subprocess."""
