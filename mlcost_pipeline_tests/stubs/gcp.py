"""A local stand-in for Google's OAuth token endpoint, BigQuery v2 REST and the Cloud Billing v1 REST API.

BigQuery queries are really run: the stub transpiles the received GoogleSQL to DuckDB with sqlglot and executes
it, with the bound query parameters, over a `billing_export` table loaded from export rows (the sample
generator's, or a test's own), then answers in BigQuery's `{"f": [{"v": ...}]}` row encoding (TIMESTAMP as int64
microseconds, the client asks for that), paging through jobs.get + getQueryResults. So the aggregation SQL the
connector sends is what decides the numbers, as it would be in BigQuery.

Faults are queued per operation (`faults["jobs.query"]`, `"getQueryResults"`, `"tables.get"`,
`"billingAccounts.get"`, `"skus.list"`), one per request: an HTTP status (answered with Google's error body and
reason), RESET (the connection dropped unanswered), SLOW (the right answer after `slow_seconds`), TRUNCATED (the
right answer cut short: fewer bytes than its Content-Length) or MALFORMED (a complete 200 whose JSON is cut in
half). `page_loop` makes result and SKU pages after the first point back at themselves.
"""

from __future__ import annotations

import gc
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlglot
from pytest import MonkeyPatch
from sqlglot import exp

from mlcost_pipeline_tests.stubs.bigquery_rows import cell, field, naive
from mlcost_pipeline_tests.stubs.gcp_schemas import DETAILED_COLUMNS, EXPORT_COLUMNS
from mlcost_pipeline_tests.stubs.http import RESET, JsonServer

SLOW, TRUNCATED, MALFORMED = "slow", "truncated", "malformed"
_REASONS = {429: ("rateLimitExceeded", "RESOURCE_EXHAUSTED"), 500: ("internalError", "INTERNAL"),
            502: ("badGateway", "UNAVAILABLE"), 503: ("backendError", "UNAVAILABLE")}  # fmt: skip
__all__ = ["MALFORMED", "RESET", "SLOW", "TRUNCATED", "UNIVERSE_DOMAIN", "GcpStub", "google_adc",
           "write_service_account"]


class GcpStub:
    """Serves one billing export table (`table`), a billing account, and SKU prices for the catalog."""

    def __init__(self, rows: list[dict], table: str = "acme-billing.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
                 page_size: int = 40, account_names: dict[str, str] | None = None,
                 skus: dict[str, list[dict]] | None = None, **load_options):
        self.table = table
        self.page_size = page_size
        self.account_names = account_names or {}
        self.skus = skus or {}
        self.queries: list[str] = []
        self.jobs: dict[str, tuple[list[dict], list[dict]]] = {}
        self.token_requests = 0
        self.faults: dict[str, list] = {}
        self.page_loop = False
        self.slow_seconds = 2.5  # later than the 1 s request timeout the fault tests set
        self._lock = threading.Lock()
        self.con = duckdb.connect()
        self.load(rows, **load_options)
        self.server = JsonServer(self.handle)

    def __enter__(self) -> GcpStub:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
        gc.collect()  # free DuckDB result objects held by finished request threads before the connection
        self.con.close()

    @property
    def url(self) -> str:
        return self.server.url

    def load(self, rows: list[dict], drop_columns: tuple[str, ...] = (), detailed: bool = False,
             columns: dict[str, str] | None = None, export_time: str = "export_time",
             partition_field: str | None = None) -> None:
        """Serve `rows` as the table, with the schema `columns` (DuckDB types; default: today's standard export).

        `_PARTITIONTIME` is the day of `export_time` (the export's ingestion-time partitioning); with
        `partition_field` tables.get reports the table partitioned by that column instead.
        """
        all_columns = {**(columns or EXPORT_COLUMNS), **(DETAILED_COLUMNS if detailed else {})}
        columns = {k: v for k, v in all_columns.items() if k not in drop_columns}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rows.json"
            with path.open("w") as f:
                for row in rows:
                    out = {k: row.get(k) for k in columns}
                    for k, typ in columns.items():
                        if typ == "TIMESTAMP" and isinstance(out[k], str):
                            out[k] = naive(out[k])
                    f.write(json.dumps(out, default=str) + "\n")
            spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
            with self._lock:
                self.con.execute("DROP TABLE IF EXISTS billing_export")
                self.con.execute(
                    f"CREATE TABLE billing_export AS SELECT *, date_trunc('day', \"{export_time}\") AS _PARTITIONTIME "
                    f"FROM read_json($path, columns = {spec}, format = 'newline_delimited')",
                    {"path": str(path)},
                )
        self.columns = list(columns)
        self.partition_field = partition_field

    # --- BigQuery ---------------------------------------------------------------------------------------------
    def _run(self, sql: str, parameters: list[dict]) -> tuple[list[dict], list[dict]]:
        self.queries.append(sql)
        ast = sqlglot.parse_one(sql, read="bigquery")
        for table in ast.find_all(exp.Table):
            if table.args.get("db"):
                table.replace(exp.to_table("billing_export"))
        duck = ast.sql(dialect="duckdb").replace("AS DECIMAL)", "AS DECIMAL(38, 9))")
        params = {}
        for p in parameters:
            value = p["parameterValue"]["value"]
            typed = p["parameterType"]["type"] == "TIMESTAMP"
            params[p["name"]] = datetime.fromisoformat(naive(value)) if typed else value
        with self._lock:
            described = self.con.execute(f"DESCRIBE {duck}", params).fetchall()
            values = self.con.execute(duck, params).fetchall()
        fields = [field(n, t) for n, t, *_ in described]
        rows = [{"f": [{"v": cell(f, _result(f, v))} for f, v in zip(fields, row, strict=True)]} for row in values]
        return fields, rows

    def _page(self, job_id: str, token: str | None) -> dict:
        fields, rows = self.jobs[job_id]
        start = int(token or 0)
        out = {"schema": {"fields": fields}, "jobComplete": True, "totalRows": str(len(rows)),
               "rows": rows[start : start + self.page_size], "totalBytesProcessed": str(1024 * len(rows))}
        if start + self.page_size < len(rows):
            out["pageToken"] = str(start + self.page_size)
        return out

    def _job(self, project: str, job_id: str) -> dict:
        return {"kind": "bigquery#job", "id": f"{project}:US.{job_id}",
                "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
                "configuration": {"jobType": "QUERY", "query": {"query": "", "useLegacySql": False}},
                "status": {"state": "DONE"},
                "statistics": {"creationTime": "1793491200000", "startTime": "1793491200100",
                               "endTime": "1793491200200", "query": {"totalBytesProcessed": "1024",
                                                                     "statementType": "SELECT"}}}  # fmt: skip

    def _table(self, project: str, dataset: str, table: str) -> tuple[int, object, dict]:
        if f"{project}.{dataset}.{table}" != self.table:
            return 404, {"error": {"code": 404, "message": f"Not found: Table {project}:{dataset}.{table}",
                                   "errors": [{"reason": "notFound"}]}}, {}  # fmt: skip
        with self._lock:
            described = self.con.execute("DESCRIBE SELECT * EXCLUDE (_PARTITIONTIME) FROM billing_export").fetchall()
        fields = [field(n, t) for n, t, *_ in described]
        return 200, {"kind": "bigquery#table", "id": f"{project}:{dataset}.{table}",
                     "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
                     "schema": {"fields": fields}, "type": "TABLE",
                     "timePartitioning": {"type": "DAY", **({"field": self.partition_field}
                                                            if self.partition_field else {})}}, {}

    @staticmethod
    def operation(method: str, path: str) -> str:
        for op, verb, pattern in (("tables.get", "GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+"),
                                  ("jobs.query", "POST", r"/bigquery/v2/projects/[^/]+/queries"),
                                  ("getQueryResults", "GET", r"/bigquery/v2/projects/[^/]+/queries/[^/]+"),
                                  ("billingAccounts.get", "GET", r"/v1/billingAccounts/[^/]+"),
                                  ("skus.list", "GET", r"/v1/services/[^/]+/skus")):  # fmt: skip
            if method == verb and re.fullmatch(pattern, path):
                return op
        return ""

    def handle(self, method, path, query, headers, body):
        queued = self.faults.get(self.operation(method, path))
        fault = queued.pop(0) if queued else None
        if fault == RESET:
            return RESET, None, {}
        if isinstance(fault, int):
            reason, status = _REASONS.get(fault, ("backendError", "UNKNOWN"))
            return fault, {"error": {"code": fault, "message": "stub fault", "status": status,
                                     "errors": [{"reason": reason, "message": "stub fault"}]}}, {}  # fmt: skip
        if fault == SLOW:
            time.sleep(self.slow_seconds)  # the client has given up: this answer must not count
        code, answer, extra = self._answer(method, path, query, headers, body)
        if fault in (TRUNCATED, MALFORMED) and code == 200:
            data = json.dumps(answer).encode()
            extra = {**extra, "Content-Length": str(len(data))} if fault == TRUNCATED else extra
            return code, data[: len(data) // 2], extra
        return code, answer, extra

    def _answer(self, method, path, query, headers, body):
        if method == "POST" and path == "/token":
            self.token_requests += 1
            return 200, {"access_token": "stub-access-token", "expires_in": 3600, "token_type": "Bearer"}, {}
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not str(auth).startswith("Bearer "):
            return 401, {"error": {"code": 401, "message": "no credentials", "status": "UNAUTHENTICATED"}}, {}
        if m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", path):
            return self._table(*m.groups())
        if method == "POST" and (m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/queries", path)):
            job_id = "job_" + str(body.get("requestId", len(self.jobs)))
            try:
                self.jobs[job_id] = self._run(body["query"], body.get("queryParameters", []))
            except duckdb.Error as exc:
                return 400, {"error": {"code": 400, "message": str(exc), "errors": [{"reason": "invalidQuery"}]}}, {}
            page = self._page(job_id, None)
            return 200, {"kind": "bigquery#queryResponse", "jobReference": {"projectId": m[1], "jobId": job_id,
                                                                            "location": "US"}, **page}, {}
        if method == "GET" and (m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs/([^/]+)", path)):
            return 200, self._job(m[1], m[2]), {}
        if method == "GET" and (m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/queries/([^/]+)", path)):
            page = self._page(m[2], query.get("pageToken"))
            if self.page_loop and query.get("pageToken"):
                page["pageToken"] = query["pageToken"]
            return 200, {"kind": "bigquery#getQueryResultsResponse",
                         "jobReference": {"projectId": m[1], "jobId": m[2], "location": "US"}, **page}, {}
        # --- Cloud Billing ------------------------------------------------------------------------------------
        if method == "GET" and (m := re.fullmatch(r"/v1/billingAccounts/([^/]+)", path)):
            name = self.account_names.get(m[1])
            if name is None:
                return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, {}
            return 200, {"name": f"billingAccounts/{m[1]}", "displayName": name, "open": True}, {}
        if method == "GET" and (m := re.fullmatch(r"/v1/services/([^/]+)/skus", path)):
            skus = self.skus.get(m[1], [])
            start = int(query.get("pageToken") or 0)
            out = {"skus": [_sku(m[1], s, query.get("currencyCode", "USD")) for s in skus[start : start + 2]]}
            if start + 2 < len(skus):
                out["nextPageToken"] = str(start + 2)
            if self.page_loop and query.get("pageToken"):
                out["nextPageToken"] = query["pageToken"]
            return 200, out, {}
        return 404, {"error": {"code": 404, "message": f"stub: no route {method} {path}"}}, {}


def _result(field: dict, value):
    """BigQuery writes a NULL array into a query result as an empty one (inside the query they differ)."""
    if field.get("mode") == "REPEATED":
        return [_result({**field, "mode": "NULLABLE"}, v) for v in value or []]
    if field["type"] == "RECORD" and isinstance(value, dict):
        return {f["name"]: _result(f, value.get(f["name"])) for f in field["fields"]}
    return value


def _sku(service_id: str, sku: dict, currency: str) -> dict:
    price = Decimal(sku["price"])
    units, nanos = int(price), int((price - int(price)) * 10**9)
    return {"name": f"services/{service_id}/skus/{sku['id']}", "skuId": sku["id"], "description": sku["id"],
            "pricingInfo": [{"effectiveTime": "2026-01-01T00:00:00Z", "pricingExpression": {
                "usageUnit": sku.get("unit_code", "h"), "usageUnitDescription": sku["unit"], "baseUnit": "s",
                "baseUnitConversionFactor": 3600, "displayQuantity": 1,
                "tieredRates": [{"startUsageAmount": 0, "unitPrice": {"currencyCode": currency, "units": "0", "nanos": 0}},
                                {"startUsageAmount": 1, "unitPrice": {"currencyCode": currency, "units": str(units),
                                                                      "nanos": nanos}}]},
                "currencyConversionRate": 1}]}  # fmt: skip


UNIVERSE_DOMAIN = "stub.invalid"


@contextmanager
def google_adc(stub: GcpStub, directory: Path) -> Iterator[None]:
    """Google's Application Default Credentials pointed at the stub (a service-account key it signs tokens for)."""
    key = write_service_account(directory / "sa.json", stub.url + "/token")
    with MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        mp.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE_DOMAIN)
        yield


def write_service_account(path: Path, token_uri: str, project: str = "acme-billing") -> Path:
    """A Google service-account key file whose token endpoint is the stub: ADC then signs a JWT and asks it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "stub-key",
        "private_key": pem, "client_email": f"mlcost@{project}.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri,
        # Not googleapis.com: google-auth then skips its regional-access-boundary lookup, a call to
        # iamcredentials.googleapis.com that a test must never make. Pair with GOOGLE_CLOUD_UNIVERSE_DOMAIN.
        "universe_domain": UNIVERSE_DOMAIN,
    }))  # fmt: skip
    return path
