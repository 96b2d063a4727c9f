"""Compressed upstream bodies. The addon asks translated upstreams for `identity`, but a misbehaving
server (or a proxy in between) may compress anyway; translation must still work."""

from __future__ import annotations

import zlib
from typing import Protocol


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes:
        """The bytes decoded so far; ValueError on corrupt input."""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits=wbits)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._d.decompress(data)
        except zlib.error as e:
            raise ValueError(str(e)) from e


class _Brotli:
    def __init__(self) -> None:
        import brotli  # a mitmproxy dependency

        self._error = brotli.error
        self._d = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._d.process(data)
        except self._error as e:
            raise ValueError(str(e)) from e


def decompressor(encoding: str | None) -> Decompressor | None:
    """An incremental decompressor for a Content-Encoding value; None for identity."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return _Zlib(47)  # 47: gzip or zlib header, auto-detected
    if enc == "deflate":
        return _Zlib(15)
    if enc == "br":
        return _Brotli()
    raise ValueError(f"unsupported content-encoding {encoding!r}")


def looks_gzipped(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def decode_body(body: bytes, encoding: str | None) -> bytes:
    """A whole body; without a declared encoding, gzip is recognised by its magic bytes."""
    d = decompressor(encoding if encoding else ("gzip" if looks_gzipped(body) else None))
    return body if d is None else d.decompress(body)
