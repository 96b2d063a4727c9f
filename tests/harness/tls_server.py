"""A loopback HTTPS server with a fresh self-signed certificate, for tests of certificate checks."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextmanager
def self_signed_https(folder: Path, san: str, method: str, body: bytes,
                      content_type: str | None = None) -> Iterator[tuple[int, Path]]:
    """Serve on 127.0.0.1 with a certificate for `san` (`DNS:localhost`, `IP:127.0.0.1`) that no trust
    store knows, answering every `method` request with 200 and `body`. Yields (port, certificate file)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert), "-days", "1"],
                   check=True, capture_output=True, timeout=60)

    class Answer(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            if content_type:
                self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    setattr(Answer, f"do_{method}", Answer.answer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        thread.join(5)
