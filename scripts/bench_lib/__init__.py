"""llmitm benchmark harness (issue 5). Entry point: scripts/bench. Stdlib only, except the
translation micro-benchmark, which imports llmitm."""
