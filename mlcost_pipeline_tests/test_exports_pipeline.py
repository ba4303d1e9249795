"""An export root as providers write it, through the whole pipeline with MLCOST_SOURCES=focus, locally and on S3.

The root holds Azure ActualCost and AmortizedCost exports of one scope (CreateNewReport: an earlier run of each
beside the current one, with other amounts) and an AWS Data Exports CUR 2.0 export (overwrite: the period manifest
lists one file; a leftover chunk it does not list sits beside it). Discovery must choose the current runs and the
listed file, the converters must turn them into FOCUS, and per day and provider core.focus_costs must hold
exactly: Azure BilledCost = the current actual export's cost, EffectiveCost = the current amortized export's;
AWS BilledCost = the sum of UnblendedCost, EffectiveCost = AWS's amortized cost. Expectations come from the
files' bytes with csv + Decimal.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pytest
from moto.server import ThreadedMotoServer

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.defs.core.focus_costs import focus_costs
from mlcost_pipeline.defs.ingest.raw_assets import focus_export_files
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline_tests.connector_helpers import live_settings
from mlcost_pipeline_tests.test_aws_cur_shapes import expected_by_day, lines, write_cur2_parquet

AZURE = Path(__file__).parent / "fixtures" / "azure-cost-details"
SCOPE = "/subscriptions/9f1c7c1e-0000-4e5b-9d36-acme00000001"
BUCKET = "acme-billing"
AZURE_DAYS = (date(2026, 3, 1), date(2026, 3, 3))
AWS_DAYS = (date(2026, 11, 1), date(2026, 11, 6))


def _azure_rows(name: str) -> tuple[list[str], list[dict[str, str]]]:
    """The MCA fixture moved from March 2024 to March 2026 (daily partitions start in 2025)."""
    with (AZURE / name).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = [{k: v.replace("2024-03-", "2026-03-").replace("2024-04-", "2026-04-") for k, v in r.items()}
                for r in reader]  # fmt: skip
        return list(reader.fieldnames), rows


def _csv(header: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _stale(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """An earlier month-to-date run: the first two days only, every cost three times what the current run says."""
    out = []
    for r in rows:
        if r["date"] > "2026-03-02":
            continue
        out.append({k: (str(Decimal(v) * 3) if "cost" in k.lower() and v else v) for k, v in r.items()})
    return out


def _azure_run(root: Path, export: str, kind: str, run_id: str, submitted: str, last_day: date,
               header: list[str], rows: list[dict[str, str]]) -> None:  # fmt: skip
    """A run folder and its manifest.json in Microsoft's documented shape (manifestVersion 2024-04-01)."""
    folder = f"exports/{export}/20260301-20260331/{run_id}"
    data = _csv(header, rows)
    (root / folder).mkdir(parents=True)
    (root / folder / "part_0_0001.csv").write_bytes(data)
    manifest = {
        "manifestVersion": "2024-04-01", "byteCount": len(data), "blobCount": 1, "dataRowCount": len(rows),
        "exportConfig": {"exportName": export, "resourceId": f"{SCOPE}/providers/Microsoft.CostManagement/exports/"
                         f"{export}", "dataVersion": "2023-12-01-preview", "apiVersion": "2025-03-01",
                         "type": kind, "timeFrame": "MonthToDate", "granularity": "Daily"},
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "CreateNewReport", "fileFormat": "Csv",
                           "compressionMode": "None", "rootFolderPath": "exports"},
        "runInfo": {"executionType": "Scheduled", "submittedTime": submitted, "runId": run_id,
                    "startDate": "2026-03-01T00:00:00", "endDate": f"{last_day}T00:00:00"},
        "blobs": [{"blobName": f"{folder}/part_0_0001.csv", "byteCount": len(data), "dataRowCount": len(rows)}],
    }  # fmt: skip
    (root / folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def build_export_root(root: Path) -> dict[tuple[date, str], tuple[Decimal, Decimal]]:
    """The tree, and per (day, provider) the (BilledCost, EffectiveCost) that must land."""
    expected: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for export, kind, name, column in (("daily-actual", "ActualCost", "MCA_ActualCost.csv", 0),
                                       ("daily-amortized", "AmortizedCost", "MCA_AmortizedCost.csv", 1)):
        header, rows = _azure_rows(name)
        _azure_run(root, export, kind, "run-0302", "2026-03-02T06:10:00Z", date(2026, 3, 2), header, _stale(rows))
        _azure_run(root, export, kind, "run-0304", "2026-03-04T06:10:00Z", date(2026, 3, 3), header, rows)
        for r in rows:
            # DECIMAL(38,12), rounded half away from zero as DuckDB casts
            cost = Decimal(r["costInBillingCurrency"]).quantize(Decimal("1e-12"), ROUND_HALF_UP)
            expected[(date.fromisoformat(r["date"][:10]), "Microsoft")][column] += cost
    cur = lines()
    export = root / "aws" / "acme-cur2"
    data = export / "data" / "BILLING_PERIOD=2026-11"
    data.mkdir(parents=True)
    write_cur2_parquet(cur, data / "acme-cur2-00001.snappy.parquet")
    write_cur2_parquet(cur[:5], data / "acme-cur2-00002.snappy.parquet")  # a leftover of a bigger earlier delivery
    (export / "metadata" / "BILLING_PERIOD=2026-11").mkdir(parents=True)
    (export / "metadata" / "BILLING_PERIOD=2026-11" / "acme-cur2-Manifest.json").write_text(json.dumps({
        "executionId": "exec-1107", "exportArn": "arn:aws:bcm-data-exports:us-east-1:111111111111:export/acme-cur2",
        "columns": [{"name": "line_item_unblended_cost", "type": "double"}],
        "dataFiles": [f"s3://{BUCKET}/aws/acme-cur2/data/BILLING_PERIOD=2026-11/acme-cur2-00001.snappy.parquet"],
    }))  # fmt: skip
    for (day, _currency), (billed, effective) in expected_by_day(cur).items():
        expected[(day, "AWS")][0] += billed
        expected[(day, "AWS")][1] += effective
    return {k: (v[0], v[1]) for k, v in expected.items()}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_an_export_root_counts_every_charge_once_through_the_pipeline(where, tmp_path, s3_endpoint, monkeypatch):
    expected = build_export_root(tmp_path / "root")
    path = str(tmp_path / "root")
    if where == "s3":
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3_endpoint}.items():
            monkeypatch.setenv(k, v)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for f in (tmp_path / "root").rglob("*"):
            if f.is_file():
                client.upload_file(str(f), BUCKET, str(f.relative_to(tmp_path / "root")))
        path = f"s3://{BUCKET}/"
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=path)
    if where == "local":  # the whole graph: allocation and marts must conserve what landed
        defs = build_definitions(settings)
        results = [run_range(defs, a, b, dg.DagsterInstance.ephemeral()) for a, b in (AZURE_DAYS, AWS_DAYS)]
    else:  # the same files from a bucket: landing and normalizing are what the store changes
        results = [dg.materialize([focus_export_files, focus_costs], resources=build_resources(settings),
                                  instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                  tags={"dagster/asset_partition_range_start": a.isoformat(),
                                        "dagster/asset_partition_range_end": b.isoformat()})
                   for a, b in (AZURE_DAYS, AWS_DAYS)]  # fmt: skip
    for result in results:
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        failed = {e.check_name: e.metadata for e in result.get_asset_check_evaluations() if not e.passed}
        assert failed == {}, failed
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        landed = con.execute("SELECT x_ChargeDate, ProviderName, sum(BilledCost), sum(EffectiveCost) "
                             "FROM core.focus_costs GROUP BY ALL").fetchall()  # fmt: skip
        files = con.execute("SELECT DISTINCT dataset, execution, paired, regexp_extract(uri, '[^/]+/[^/]+$') "
                            "FROM raw.focus_export_files ORDER BY ALL").fetchall()  # fmt: skip
    assert {(d, p): (b, e) for d, p, b, e in landed} == expected
    assert files == [("aws_cur2", "exec-1107", False, "BILLING_PERIOD=2026-11/acme-cur2-00001.snappy.parquet"),
                     ("azure_actual", "run-0304", True, "run-0304/part_0_0001.csv"),
                     ("azure_amortized", "run-0304", False, "run-0304/part_0_0001.csv")]
    [landing] = [m for r in results[:1] for m in r.get_asset_materialization_events()
                 if m.asset_key == dg.AssetKey(["raw", "focus_export_files"])][:1]
    decisions = landing.materialization.metadata["discovery"].value["decisions"]
    assert any("acme-cur2-00002" in line for line in decisions), decisions  # the unlisted chunk, and why
    assert any("run_chosen" in line and "run-0304" in line for line in decisions), decisions
