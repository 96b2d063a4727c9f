"""Request bodies decoded with a ceiling (sans-I/O, no mitmproxy).

An app may send its body `content-encoding: gzip` (or deflate). Decoding it whole, as mitmproxy's
`get_content()` does, lets a 0.5 MB body inflate to 1 GB inside the proxy (measured before this
module existed). Here the decompressor is asked for at most `limit + 1` bytes, so a body that would
exceed the limit is refused having cost `limit` bytes of memory.

Only the encodings whose decoder can be bounded are read: gzip (and its `x-gzip` alias) and deflate
(zlib's `max_length`). brotli's Python binding has no output limit and zstd is not among llmitm's
dependencies, so both are refused as unsupported (415), as is a stack of encodings (`gzip, gzip`):
no SDK compresses request bodies at all, and each layer would multiply the ratio.
"""

from __future__ import annotations

import zlib

# mitmproxy's body_size_limit, the outer cap, is this many times max_body_bytes (see mitmproxy_body_size_limit).
OUTER_CAP_FACTOR = 2

# wbits per encoding: 47 accepts a gzip or zlib header (auto-detected); deflate per RFC 9110 is zlib.
_ZLIB_WBITS = {"gzip": 47, "x-gzip": 47, "deflate": 15}


class BodyTooLarge(ValueError):
    """The body is (or would decode to) more than the limit. The app's fault: 413."""


class UnreadableEncoding(ValueError):
    """The body's content-encoding is corrupt (400) or one llmitm will not decode (`unsupported`: 415)."""

    def __init__(self, message: str, *, unsupported: bool):
        super().__init__(message)
        self.unsupported = unsupported


def decode_capped(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`raw` with its content-encoding undone, never more than `limit` bytes (else BodyTooLarge)."""
    if len(raw) > limit:
        raise BodyTooLarge(f"of {len(raw)} bytes exceeds")
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return raw
    if len(codings) > 1:
        raise UnreadableEncoding(f"stacked content-encodings ({content_encoding}) are not accepted; send one",
                                 unsupported=True)
    wbits = _ZLIB_WBITS.get(codings[0])
    if wbits is None:
        raise UnreadableEncoding(f"content-encoding {codings[0]!r} is not accepted (gzip or deflate only)",
                                 unsupported=True)
    decoder = zlib.decompressobj(wbits=wbits)
    try:
        out = decoder.decompress(raw, limit + 1)
        if len(out) > limit or decoder.unconsumed_tail:
            raise BodyTooLarge("decompressed exceeds")
        out += decoder.flush()
    except zlib.error as e:
        raise UnreadableEncoding(f"corrupt {codings[0]} data ({e})", unsupported=False) from None
    if len(out) > limit:
        raise BodyTooLarge("decompressed exceeds")
    if not decoder.eof:
        raise UnreadableEncoding(f"truncated {codings[0]} data", unsupported=False)
    return out


def mitmproxy_body_size_limit(max_body_bytes: int, max_response_bytes: int) -> int:
    """mitmproxy's `body_size_limit`: the outer cap on any body it buffers, in either direction.

    mitmproxy answers a request body over this limit itself, before any hook can change it, with an
    HTML 413 (`check_body_size` in `proxy/layers/http/__init__.py` → `ResponseProtocolError` →
    `make_error_response`; 11.0.2 and 12.x alike), and a chunked body has no Content-Length for llmitm
    to screen in `requestheaders`. So the cap sits above llmitm's own limit: every body up to
    `OUTER_CAP_FACTOR` × `max_body_bytes` is read whole and refused by llmitm past `max_body_bytes`
    with a 413 in the app's protocol; only a larger one meets mitmproxy's answer. Memory per request
    stays bounded by the cap. The same option bounds a buffered response on a route without a pool, so
    it is never below `max_response_bytes`.
    """
    return max(OUTER_CAP_FACTOR * max_body_bytes, max_response_bytes)
