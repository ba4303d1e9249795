"""A local stand-in for the Google Cloud Storage JSON API, as gcsfs calls it through STORAGE_EMULATOR_HOST.

Serves objects from memory ({bucket: {key: bytes}}): bucket get, objects.list (prefix, delimiter, paged by
`page_size` with nextPageToken), objects.get (metadata: size, md5Hash, etag, generation) and the media download
(`/download/storage/v1/b/<bucket>/o/<key>?alt=media`, with Range). Every request must carry a bearer token
(Google ADC with the key file of stubs/gcp.write_service_account signs its own JWT), so anonymous access is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

UPDATED = "2026-10-05T06:00:00.000Z"


def object_resource(bucket: str, key: str, data: bytes) -> dict:
    md5 = hashlib.md5(data).digest()
    return {"kind": "storage#object", "id": f"{bucket}/{key}/1", "name": key, "bucket": bucket,
            "size": str(len(data)), "md5Hash": base64.b64encode(md5).decode(), "etag": md5.hex()[:16],
            "generation": "1", "metageneration": "1", "contentType": "application/octet-stream",
            "storageClass": "STANDARD", "timeCreated": UPDATED, "updated": UPDATED}  # fmt: skip


class GcsStub:
    def __init__(self, objects: dict[str, dict[str, bytes]], page_size: int = 2):
        self.objects = objects
        self.page_size = page_size
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.authorizations: set[str] = set()
        outer = self

        class _H(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                outer.requests.append(("GET", parts.path, query))
                auth = str(self.headers.get("Authorization", ""))
                outer.authorizations.add(auth)
                if not auth.startswith("Bearer "):
                    return self._send(401, {"error": {"code": 401, "message": "Anonymous caller"}})
                status, body, headers = outer.handle(parts.path, query, self.headers.get("Range"))
                self._send(status, body, headers)

            def _send(self, status, body, headers=None):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else
                                 "application/octet-stream")  # fmt: skip
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # gcsfs cancels a raced lookup it no longer needs
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> GcsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _missing(self, what: str):
        return 404, {"error": {"code": 404, "message": f"No such object: {what}"}}, {}

    def handle(self, path: str, query: dict[str, str], range_header: str | None):
        media = path.startswith("/download/storage/v1/b/") or query.get("alt") == "media"
        rest = path.removeprefix("/download").removeprefix("/storage/v1/b/")
        if rest == path:
            return 404, {"error": {"code": 404, "message": f"stub: no route {path}"}}, {}
        bucket, _, obj = rest.partition("/")
        if bucket not in self.objects:
            return 404, {"error": {"code": 404, "message": f"The specified bucket does not exist: {bucket}"}}, {}
        if not obj:
            return 200, {"kind": "storage#bucket", "id": bucket, "name": bucket, "location": "US"}, {}
        if obj == "o":
            return 200, self._list(bucket, query), {}
        if not obj.startswith("o/"):
            return 404, {"error": {"code": 404, "message": f"stub: no route {path}"}}, {}
        key = unquote(obj[2:])
        data = self.objects[bucket].get(key)
        if data is None:
            return self._missing(f"{bucket}/{key}")
        if not media:
            return 200, object_resource(bucket, key, data), {}
        if range_header and range_header.startswith("bytes="):
            first, _, last = range_header[6:].partition("-")
            start, stop = int(first), (int(last) + 1 if last else len(data))
            return 206, data[start:stop], {"Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}
        return 200, data, {}

    def _list(self, bucket: str, query: dict[str, str]) -> dict:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        items, prefixes = [], set()
        for key in sorted(self.objects[bucket]):
            if not key.startswith(prefix):
                continue
            tail = key[len(prefix) :]
            if delimiter and delimiter in tail:
                prefixes.add(prefix + tail.split(delimiter)[0] + delimiter)
            else:
                items.append(object_resource(bucket, key, self.objects[bucket][key]))
        size = min(self.page_size, int(query.get("maxResults") or self.page_size))
        start = int(query.get("pageToken") or 0)
        out: dict = {"kind": "storage#objects", "items": items[start : start + size]}
        if start == 0 and prefixes:
            out["prefixes"] = sorted(prefixes)
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out
