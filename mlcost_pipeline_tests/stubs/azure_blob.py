"""A local stand-in for the Azure Blob service, as adlfs and azure-storage-blob call it (Azurite-style URLs).

Serves blobs from memory ({container: {name: bytes}}) under http://127.0.0.1:<port>/<account>/: List Blobs (XML,
prefix, delimiter, paged by `page_size` with NextMarker), Get Container Properties, Get Blob Properties (HEAD) and
Get Blob (with x-ms-range / Range). Each request must be signed with Shared Key by the account in the connection
string (the signature itself is checked), so an unsigned or wrongly keyed client is refused with 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

ACCOUNT = "devstoreaccount1"
KEY = base64.b64encode(b"mlcost-stub-account-key-0123456789").decode()
MODIFIED = "Mon, 05 Oct 2026 06:00:00 GMT"
_SIGNED = ("Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
           "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range")  # fmt: skip


def shared_key_signature(method: str, path: str, query: dict[str, list[str]], headers, account: str, key: str) -> str:
    """The Shared Key string-to-sign of the Blob service, signed (learn.microsoft.com: authorize-with-shared-key)."""
    values = []
    for name in _SIGNED:
        value = headers.get(name) or ""
        values.append("" if name == "Content-Length" and value == "0" else value)
    ms = sorted((k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-ms-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in ms)
    resource = f"/{account}{path}" + "".join(
        f"\n{k.lower()}:{','.join(sorted(v))}" for k, v in sorted(query.items(), key=lambda kv: kv[0].lower()))
    to_sign = f"{method}\n" + "\n".join(values) + "\n" + canonical_headers + resource
    return base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()


def connection_string(url: str, account: str = ACCOUNT, key: str = KEY) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={url}/{account};"


def _etag(data: bytes) -> str:
    return '"0x8D' + hashlib.md5(data).hexdigest()[:13].upper() + '"'


def _properties(data: bytes) -> dict[str, str]:
    return {"Last-Modified": MODIFIED, "ETag": _etag(data), "Content-Type": "text/csv",
            "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(), "x-ms-blob-type": "BlockBlob",
            "x-ms-creation-time": MODIFIED, "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available",
            "x-ms-server-encrypted": "true", "Accept-Ranges": "bytes"}  # fmt: skip


class BlobStub:
    def __init__(self, containers: dict[str, dict[str, bytes]], page_size: int = 2):
        self.containers = containers
        self.page_size = page_size
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _go(self, method: str) -> None:
                parts = urlsplit(self.path)
                multi = parse_qs(parts.query, keep_blank_values=True)
                query = {k: v[0] for k, v in multi.items()}
                outer.requests.append((method, unquote(parts.path), query))
                status, body, headers = outer.handle(method, self.path, multi, self.headers)
                self.send_response(status)
                base = {"x-ms-request-id": "stub", "x-ms-version": self.headers.get("x-ms-version", "2025-01-05"),
                        "Date": formatdate(usegmt=True)}  # fmt: skip
                for k, v in {**base, **headers}.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if method != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # a client that gave up on a raced request
                    pass

            def do_GET(self):
                self._go("GET")

            def do_HEAD(self):
                self._go("HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BlobStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _error(status: int, code: str) -> tuple[int, bytes, dict[str, str]]:
        body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{code}</Message></Error>'
        return status, body.encode(), {"Content-Type": "application/xml", "x-ms-error-code": code}

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers):
        path = urlsplit(raw_path).path
        expected = shared_key_signature(method, path, query, headers, ACCOUNT, KEY)
        if headers.get("Authorization") != f"SharedKey {ACCOUNT}:{expected}":
            return self._error(403, "AuthenticationFailed")
        account, _, rest = unquote(path).lstrip("/").partition("/")
        container, _, name = rest.partition("/")
        if account != ACCOUNT or container not in self.containers:
            return self._error(404, "ContainerNotFound")
        blobs = self.containers[container]
        flat = {k: v[0] for k, v in query.items()}
        if not name and flat.get("restype") == "container":
            if flat.get("comp") == "list":
                return 200, self._list(container, flat), {"Content-Type": "application/xml"}
            return 200, b"", {"Last-Modified": MODIFIED, "ETag": '"0x8D0"'}
        if name not in blobs:
            return self._error(404, "BlobNotFound")
        data = blobs[name]
        if method == "HEAD":
            return 200, b"", {**_properties(data), "Content-Length": str(len(data))}
        wanted = headers.get("x-ms-range") or headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start, stop = int(first), min(int(last) + 1 if last else len(data), len(data))
            chunk = data[start:stop]
            return 206, chunk, {**_properties(data), "Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}
        return 200, data, _properties(data)

    def _list(self, container: str, query: dict[str, str]) -> bytes:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        entries: dict[str, str] = {}
        for name in sorted(self.containers[container]):
            if not name.startswith(prefix):
                continue
            tail = name[len(prefix) :]
            if delimiter and delimiter in tail:
                sub = prefix + tail.split(delimiter)[0] + delimiter
                entries[sub] = f"<BlobPrefix><Name>{escape(sub)}</Name></BlobPrefix>"
                continue
            data = self.containers[container][name]
            p = _properties(data)
            entries[name] = (
                f"<Blob><Name>{escape(name)}</Name><Properties><Creation-Time>{MODIFIED}</Creation-Time>"
                f"<Last-Modified>{MODIFIED}</Last-Modified><Etag>{escape(p['ETag'])}</Etag>"
                f"<Content-Length>{len(data)}</Content-Length><Content-Type>text/csv</Content-Type>"
                f"<Content-MD5>{p['Content-MD5']}</Content-MD5><BlobType>BlockBlob</BlobType>"
                f"<AccessTier>Hot</AccessTier><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
                f"<ServerEncrypted>true</ServerEncrypted></Properties><Metadata /></Blob>"
            )
        keys = sorted(entries)
        start = keys.index(query["marker"]) if query.get("marker") in entries else 0
        size = min(self.page_size, int(query.get("maxresults") or self.page_size))
        page = keys[start : start + size]
        marker = keys[start + size] if start + size < len(keys) else ""
        body = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{self.url}/{ACCOUNT}/" '
                f'ContainerName="{escape(container)}"><Prefix>{escape(prefix)}</Prefix>'
                f"<Delimiter>{escape(delimiter)}</Delimiter><Blobs>{''.join(entries[k] for k in page)}</Blobs>"
                f"<NextMarker>{escape(marker)}</NextMarker></EnumerationResults>")  # fmt: skip
        return body.encode()
