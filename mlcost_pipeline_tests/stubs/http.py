"""A threaded JSON HTTP(S) server on 127.0.0.1 that hands each request to a handler function."""

from __future__ import annotations

import io
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (method, path, query, headers, body) -> (status, json body or None, extra headers); status RESET drops the
# connection without an answer (a TCP reset, as from a proxy or a load balancer that gave up)
RESET = 0
Handler = Callable[[str, str, dict[str, str], dict[str, str], object], tuple[int, object, dict[str, str]]]


class JsonServer:
    def __init__(self, handle: Handler, ssl_context: ssl.SSLContext | None = None):
        outer = self
        self.requests: list[tuple[str, str, dict[str, str]]] = []

        class _H(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so no handler thread outlives the server waiting on a
            # keep-alive socket (a live thread at exit keeps DuckDB objects alive past interpreter shutdown).
            def log_message(self, *args):
                pass

            def _go(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                outer.requests.append((method, parts.path, query))
                status, obj, extra = handle(method, parts.path, query, dict(self.headers), body)
                if status == RESET:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()  # linger 0: the peer sees a reset, not a clean end of stream
                    self.wfile = io.BytesIO()  # what the base class flushes after us goes nowhere
                    return
                data = b"" if obj is None else (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if "Content-Length" not in extra:  # a stub may announce more than it sends (a truncated answer)
                    self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # a late answer to a client that timed out and left (a test of exactly that)
                    self.close_connection = True

            def do_GET(self):
                self._go("GET")

            def do_POST(self):
                self._go("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> JsonServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
