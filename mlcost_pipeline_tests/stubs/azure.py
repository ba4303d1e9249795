"""A local HTTPS stand-in for the Azure Cost Management Query API, answering with Microsoft's published example.

Pages are built from `SubscriptionQuery.json` of Azure/azure-rest-api-specs (copied under
/work/shared/data/public-samples/azure-rest-api-specs-costmanagement/ and fixtures/): its columns (PreTaxCost,
ResourceGroup, UsageDate, Currency) and its rows, re-dated onto every day of the requested window, `page_size`
rows a page, chained by `properties.nextLink` with a `$skiptoken`. Faults are queued per test: `faults` is a
list of (status, headers) answered, one per request, before the real pages (status RESET drops the connection;
SLOW answers the real page after `slow_seconds`, later than a short client timeout); `bad` plants bad data.
The certificate comes from a trustme CA; the client trusts it through MLCOST_AZURE_CA_BUNDLE.
"""

from __future__ import annotations

import contextlib
import copy
import json
import ssl
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import trustme

from mlcost_pipeline_tests.stubs.http import RESET, JsonServer

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures/azure-rest-api-specs-costmanagement/SubscriptionQuery.json"
TOKEN = "stub-azure-token"
SLOW = -1  # a fault status: answer correctly, but late
__all__ = ["RESET", "SLOW", "AzureStub", "published_body", "serving", "write_fake_az"]


def published_body() -> dict:
    return json.loads(SAMPLE.read_text())["responses"]["200"]["body"]


class AzureStub:
    def __init__(self, ca: trustme.CA, page_size: int = 3):
        self.page_size = page_size
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.later_faults: list[tuple[int, dict[str, str]]] = []  # served to `$skiptoken` pages only (page 2 on)
        self.loop = False  # page 2 onwards names itself as its nextLink
        self.bad: str | None = None  # malformed | missing_column | unknown_currency
        self.slow_seconds = 2.0
        self.bodies: list[dict] = []
        self.times: list[float] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server = JsonServer(self.handle, context)

    def __enter__(self) -> AzureStub:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _rows(self, first: date, last: date) -> tuple[list[dict], list[list]]:
        body = published_body()
        columns = body["properties"]["columns"]
        names = [c["name"] for c in columns]
        rows = []
        for n in range((last - first).days + 1):
            day = int((first + timedelta(days=n)).strftime("%Y%m%d"))
            for row in body["properties"]["rows"]:
                row = list(row)
                row[names.index("UsageDate")] = day
                rows.append(row)
        if self.bad == "unknown_currency":
            rows[-1][names.index("Currency")] = "XYZ"
        elif self.bad == "missing_column":
            at = names.index("Currency")
            columns = [c for c in columns if c["name"] != "Currency"]
            rows = [r[:at] + r[at + 1 :] for r in rows]
        elif self.bad == "malformed":
            rows[-1] = rows[-1][:2]
        return columns, rows

    def handle(self, method, path, query, headers, body):
        self.times.append(time.monotonic())
        if not path.endswith("/providers/Microsoft.CostManagement/query") or method != "POST":
            return 404, {"error": {"code": "NotFound", "message": path}}, {}
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if auth != f"Bearer {TOKEN}":
            return 401, {"error": {"code": "AuthenticationFailed", "message": "bad token"}}, {}
        self.bodies.append(copy.deepcopy(body))
        if query.get("$skiptoken") and self.later_faults:
            self.faults.insert(0, self.later_faults.pop(0))
        if self.faults:
            status, extra = self.faults.pop(0)
            if status == SLOW:
                time.sleep(self.slow_seconds)  # the client has given up by now; this late page must not count
            elif status == RESET:
                return RESET, None, {}
            else:
                return status, {"error": {"code": str(status), "message": "stub fault"}}, extra
        period = body["timePeriod"]
        first, last = date.fromisoformat(period["from"][:10]), date.fromisoformat(period["to"][:10])
        columns, rows = self._rows(first, last)
        offset = int(query.get("$skiptoken") or 0)
        rest = offset + self.page_size < len(rows)
        scope = path.removesuffix("/providers/Microsoft.CostManagement/query")
        following = offset if self.loop and offset else offset + self.page_size
        next_link = (f"https://management.azure.com{path}?api-version={query['api-version']}"
                     f"&$skiptoken={following}") if rest else None  # fmt: skip
        page = published_body()
        page["id"] = f"{scope}/providers/Microsoft.CostManagement/query/{page['name']}"
        page["properties"] = {"nextLink": next_link, "columns": columns,
                              "rows": rows[offset : offset + self.page_size]}  # fmt: skip
        return 200, page, {}


def write_fake_az(folder: Path) -> Path:
    """An `az` executable answering `az account get-access-token` like the Azure CLI, for AzureCliCredential.

    DefaultAzureCredential restricted by AZURE_TOKEN_CREDENTIALS=AzureCliCredential then gets its token here
    through its standard chain, with no Microsoft Entra or managed-identity endpoint touched.
    """
    folder.mkdir(parents=True, exist_ok=True)
    az = folder / "az"
    token = json.dumps({"accessToken": TOKEN, "expires_on": int(time.time()) + 3600, "tokenType": "Bearer",
                        "subscription": "00000000-0000-0000-0000-000000000000", "tenant": "stub"})  # fmt: skip
    az.write_text(f"#!/bin/sh\ncat <<'EOF'\n{token}\nEOF\n")
    az.chmod(0o755)
    return az


@contextlib.contextmanager
def serving(root: Path) -> Iterator[tuple[AzureStub, Path]]:
    """An HTTPS stub with its own CA, and DefaultAzureCredential pointed at the stand-in `az` (no Microsoft login)."""
    import pytest

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    az = write_fake_az(root / "bin")
    with AzureStub(ca) as stub, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{az.parent}:/usr/bin:/bin")
        mp.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
        yield stub, root / "ca.pem"
