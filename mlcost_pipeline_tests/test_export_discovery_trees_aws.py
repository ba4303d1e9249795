"""AWS billing export trees, as AWS documents them (no tests here), and a plain folder.

Sources: "Understanding export delivery" and "Data Exports manifest file reference" (Data Exports: data/ and
metadata/ per BILLING_PERIOD, overwrite vs create new, dataFiles as s3:// URIs), "Cost and Usage Reports in
Amazon S3" (legacy CUR: assembly folders, the period manifest's reportKeys, overwrite, ZIP, the Athena layout).
"""

from __future__ import annotations

import gzip
import json
from datetime import date

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline_tests.test_export_discovery_trees import (
    BUCKET,
    SEP,
    Tree,
    csv_bytes,
    parquet_bytes,
    rows,
    zip_bytes,
)

FOCUS_COLUMNS = [{"name": c, "type": "string"} for c in ("BilledCost", "BillingCurrency", "ChargePeriodStart",
                                                          "ChargePeriodEnd", "EffectiveCost")]  # fmt: skip
CUR2_COLUMNS = [{"name": c, "type": "string"} for c in ("bill_billing_period_start_date", "line_item_unblended_cost",
                                                         "line_item_usage_start_date")]  # fmt: skip


def _data_export_manifest(export: str, execution: str, keys: list[str], columns: list[dict]) -> bytes:
    """A Data Exports manifest: executionId, exportArn, columns, dataFiles as full s3:// URIs."""
    return json.dumps({"executionId": execution, "exportArn": f"arn:aws:bcm-data-exports:us-east-1:123456789012:"
                       f"export/{export}-0b1c", "columns": columns,
                       "dataFiles": [f"s3://{BUCKET}/exports/{k}" for k in keys]}).encode()  # fmt: skip


def aws_overwrite() -> Tree:
    """Overwrite delivery: a leftover third chunk of a bigger earlier delivery is not listed; September's
    manifest is `<export>-Manifest.json`, October's `Manifest.json` (AWS uses both names)."""
    t, e = Tree(), "cur2/acme-focus"
    sep = [f"{e}/data/BILLING_PERIOD=2026-09/acme-focus-0000{i}.csv.gz" for i in (1, 2, 3)]
    rs = rows(SEP[:6], "1.00")
    t.put(sep[0], gzip.compress(csv_bytes(rs[::2])))
    t.put(sep[1], gzip.compress(csv_bytes(rs[1::2])))
    t.put(sep[2], gzip.compress(csv_bytes(rows(SEP[:2], "3.00"))))
    t.put(
        f"{e}/metadata/BILLING_PERIOD=2026-09/acme-focus-Manifest.json",
        _data_export_manifest("acme-focus", "exec-0906", sep[:2], FOCUS_COLUMNS),
    )
    octo = f"{e}/data/BILLING_PERIOD=2026-10/acme-focus-00001.snappy.parquet"
    t.put(octo, parquet_bytes(rows([date(2026, 10, 1)], "1.00")))
    t.put(
        f"{e}/metadata/BILLING_PERIOD=2026-10/Manifest.json",
        _data_export_manifest("acme-focus", "exec-1001", [octo], FOCUS_COLUMNS),
    )
    for key in (*sep[:2], octo):
        t.count(key, None, ds.FOCUS)
    return t


def aws_create_new() -> Tree:
    """Create new: each execution has its data and manifest folder; only the period manifest is current."""
    t, e, bp = Tree(), "cur2/acme-cur", "BILLING_PERIOD=2026-09"
    old = f"{e}/data/{bp}/20260903T061500Z-exec1/acme-cur-00001.csv.gz"
    t.put(old, gzip.compress(csv_bytes(rows(SEP[:3], "1.25"))))
    t.put(
        f"{e}/metadata/{bp}/20260903T061500Z-exec1/acme-cur-Manifest.json",
        _data_export_manifest("acme-cur", "exec1", [old], CUR2_COLUMNS),
    )
    rs = rows(SEP[:4], "1.00")
    new = [f"{e}/data/{bp}/20260904T061200Z-exec2/acme-cur-0000{i}.csv.gz" for i in (1, 2)]
    t.put(new[0], gzip.compress(csv_bytes(rs[::2])))
    t.put(new[1], gzip.compress(csv_bytes(rs[1::2])))
    current = _data_export_manifest("acme-cur", "exec2", new, CUR2_COLUMNS)
    t.put(f"{e}/metadata/{bp}/20260904T061200Z-exec2/acme-cur-Manifest.json", current)
    t.put(f"{e}/metadata/{bp}/acme-cur-Manifest.json", current)
    for key in new:
        t.count(key, None, ds.AWS_CUR2)
    return t


def _cur_manifest(report: str, assembly: str, keys: list[str], start: str, end: str) -> bytes:
    """A legacy CUR manifest: assemblyId, billingPeriod, bucket, bucket-relative reportKeys."""
    return json.dumps({"assemblyId": assembly, "account": "123456789012", "columns": [
        {"category": "lineItem", "name": "UnblendedCost", "type": "BigDecimal"}], "charset": "UTF-8",
        "compression": "GZIP", "contentType": "text/csv", "reportId": "5f1e", "reportName": report,
        "billingPeriod": {"start": start, "end": end}, "bucket": BUCKET,
        "reportKeys": [f"exports/{k}" for k in keys], "additionalArtifactKeys": []}).encode()  # fmt: skip


def cur_assemblies() -> Tree:
    """Previous versions kept: an assembly folder per update; the period manifest names the current one."""
    t, p = Tree(), "legacy/acme-cur/20260901-20261001"
    bp = ("20260901T000000.000Z", "20261001T000000.000Z")
    old = f"{p}/0a5e0000-asm1/acme-cur-1.csv.gz"
    t.put(old, gzip.compress(csv_bytes(rows(SEP[:2], "1.60"))))
    t.put(f"{p}/0a5e0000-asm1/acme-cur-Manifest.json", _cur_manifest("acme-cur", "0a5e0000-asm1", [old], *bp))
    rs = rows(SEP[:3], "1.00")
    new = [f"{p}/9a5e0000-asm2/acme-cur-{i}.csv.gz" for i in (1, 2)]
    t.put(new[0], gzip.compress(csv_bytes(rs[::2])))
    t.put(new[1], gzip.compress(csv_bytes(rs[1::2])))
    current = _cur_manifest("acme-cur", "9a5e0000-asm2", new, *bp)
    t.put(f"{p}/9a5e0000-asm2/acme-cur-Manifest.json", current)
    t.put(f"{p}/9a5e0000-asm2/acme-cur-RedshiftManifest.json", b'{"entries": []}')
    t.put(f"{p}/9a5e0000-asm2/acme-cur-RedshiftCommands.sql", b"copy ...")
    t.put(f"{p}/acme-cur-Manifest.json", current)
    for key in new:
        t.count(key, None, ds.AWS_CUR_LEGACY)
    return t


def cur_overwrite_zip() -> Tree:
    """Overwrite, ZIP compression: files replaced in the period folder; a leftover third file is not listed."""
    t, r = Tree(), "legacy/acme-zip"
    rs = rows(SEP[:4], "1.00")
    sep = [f"{r}/20260901-20261001/acme-zip-{i}.csv.zip" for i in (1, 2, 3)]
    t.put(sep[0], zip_bytes("acme-zip-1.csv", csv_bytes(rs[::2])))
    t.put(sep[1], zip_bytes("acme-zip-2.csv", csv_bytes(rs[1::2])))
    t.put(sep[2], zip_bytes("acme-zip-3.csv", csv_bytes(rows(SEP[:1], "5.00"))))
    t.put(
        f"{r}/20260901-20261001/acme-zip-Manifest.json",
        _cur_manifest("acme-zip", "", sep[:2], "20260901T000000.000Z", "20261001T000000.000Z"),
    )
    octo = f"{r}/20261001-20261101/acme-zip-1.csv.zip"
    t.put(octo, zip_bytes("acme-zip-1.csv", csv_bytes(rows([date(2026, 10, 2)], "1.00"))))
    t.put(
        f"{r}/20261001-20261101/acme-zip-Manifest.json",
        _cur_manifest("acme-zip", "", [octo], "20261001T000000.000Z", "20261101T000000.000Z"),
    )
    for key in (*sep[:2], octo):
        t.count(key, None, ds.AWS_CUR_LEGACY)
    return t


def cur_parquet() -> Tree:
    """The Athena (Parquet) layout, overwrite only, beside its cost_and_usage_data_status table and crawler files;
    September without a manifest (every file counts), October with one in its month folder (a stray chunk not)."""
    t, r = Tree(), "athena/acme-pq"
    keys = [f"{r}/acme-pq/year=2026/month=9/acme-pq-0000{i}.snappy.parquet" for i in (1, 2)]
    rs = rows(SEP[:3], "1.00")
    t.put(keys[0], parquet_bytes(rs[::2]))
    t.put(keys[1], parquet_bytes(rs[1::2]))
    octo = f"{r}/acme-pq/year=2026/month=10/acme-pq-00001.snappy.parquet"  # this month has its manifest
    t.put(octo, parquet_bytes(rows([date(2026, 10, 3)], "1.00")))
    t.put(f"{r}/acme-pq/year=2026/month=10/acme-pq-00002.snappy.parquet", parquet_bytes(rows([date(2026, 10, 3)],
                                                                                            "4.00")))  # fmt: skip
    t.put(
        f"{r}/acme-pq/year=2026/month=10/acme-pq-Manifest.json",
        _cur_manifest("acme-pq", "pq-1001", [octo], "20261001T000000.000Z", "20261101T000000.000Z"),
    )
    t.put(f"{r}/cost_and_usage_data_status/cost_and_usage_data_status.parquet",
          parquet_bytes([{"status": "READY"}]))  # fmt: skip
    t.put(f"{r}/20260901-20261001/acme-pq-create-table.sql", b"CREATE EXTERNAL TABLE ...")
    t.put(f"{r}/20260901-20261001/crawler-cfn.yml", b"AWSTemplateFormatVersion: 2010-09-09")
    for key in (*keys, octo):
        t.count(key, None, ds.AWS_CUR_LEGACY)
    return t


def plain_folder() -> Tree:
    """A plain folder of FOCUS files: every data file counts whole; hidden, underscore and other files do not."""
    t = Tree()
    t.put("oci/2026-09-01.csv", csv_bytes(rows(SEP[:1], "1.00")))
    t.put("oci/2026-09-02.csv.gz", gzip.compress(csv_bytes(rows(SEP[1:2], "1.00"))))
    t.put("gcp/focus.parquet", parquet_bytes(rows(SEP[2:3], "1.00")))
    t.put("oci/.2026-09-03.csv", csv_bytes(rows(SEP[2:3], "2.00")))
    t.put("oci/_SUCCESS", b"")
    t.put("README.md", b"exports")
    for key in ("oci/2026-09-01.csv", "oci/2026-09-02.csv.gz", "gcp/focus.parquet"):
        t.count(key, None)
    return t
