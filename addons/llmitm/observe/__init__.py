"""Observing what llmitm serves: cost (prices.py), and later the usage ledger and metrics."""
