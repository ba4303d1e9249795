"""FOCUS export connector: folders, globs, gzip and Parquet, local and s3:// (moto server), through the pipeline.

The export folder is written here from the sample generator, re-dressed as each provider writes it: OCI's
FOCUS 1.2 CSV as is, an Azure FocusCost-style FOCUS 1.0 gzip CSV (inclusive date-only BillingPeriodEnd,
brace-less Tags, x_ columns), and an AWS Data Exports-style Parquet file. Totals are computed from those bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pytest
from moto.server import ThreadedMotoServer

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.normalize.focus_export import ADDED_IN
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.sources.export_reads import files_by_day
from mlcost_pipeline.sources.export_stores import resolve_exports
from mlcost_pipeline.sources.sample.focus_export import focus_csv
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    live_settings,
    materialize_day,
)

D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
LATER_ONLY = set().union(*ADDED_IN.values())


def resolve_files(specs: list[str], cache_dir) -> list:
    """The local copies of every file that counts under the specs (discovery decides), sorted."""
    return sorted({path for _, path in resolve_exports(specs, cache_dir)[0]})


def _rows(day: date) -> list[dict]:
    return list(csv.DictReader(io.StringIO(focus_csv(day).decode())))


def _azure(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in LATER_ONLY and not k.startswith("oci_")}
        r.update(ProviderName="Microsoft", PublisherName="Microsoft", InvoiceIssuerName="Microsoft",
                 BillingPeriodEnd=str(date.fromisoformat(r["BillingPeriodEnd"][:10]) - timedelta(days=1)),
                 x_BillingProfileId="BP-1")  # fmt: skip
        if r["Tags"]:
            r["Tags"] = r["Tags"].strip()[1:-1]  # Azure writes the object's inside only
        out.append(r)
    return out


def _aws(rows: list[dict]) -> list[dict]:
    return [{**{k: v for k, v in r.items() if not k.startswith("oci_")}, "ProviderName": "AWS",
             "PublisherName": "AWS", "InvoiceIssuerName": "AWS", "x_Operation": "RunInstances"} for r in rows]


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def write_export_folder(folder: Path) -> dict[tuple, tuple[Decimal, Decimal]]:
    """The three files, and their totals per (day, provider, currency): (BilledCost, EffectiveCost)."""
    oci, azure, aws = _rows(D1), _azure(_rows(D2)), _aws(_rows(D3))
    (folder / "oci").mkdir(parents=True)
    (folder / "oci" / "2026-10-01.csv").write_bytes(_csv_bytes(oci))
    (folder / "azure" / "20261001-20261031").mkdir(parents=True)
    (folder / "azure" / "20261001-20261031" / "part_0_0001.csv.gz").write_bytes(gzip.compress(_csv_bytes(azure)))
    (folder / "aws" / "BILLING_PERIOD=2026-10").mkdir(parents=True)
    staging = folder / "aws.csv.tmp"
    staging.write_bytes(_csv_bytes(aws))
    with duckdb.connect() as con:
        con.execute("COPY (SELECT * FROM read_csv($src, all_varchar = true)) TO "
                    f"'{folder / 'aws' / 'BILLING_PERIOD=2026-10' / 'focus-00001.snappy.parquet'}' (FORMAT parquet)",
                    {"src": str(staging)})  # fmt: skip
    staging.unlink()
    totals: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in oci + azure + aws:
        key = (date.fromisoformat(r["ChargePeriodStart"][:10]), r["ProviderName"], r["BillingCurrency"])
        totals[key][0] += Decimal(r["BilledCost"])
        totals[key][1] += Decimal(r["EffectiveCost"])
    return {k: tuple(v) for k, v in totals.items()}


def _warehouse_totals(path: Path) -> dict[tuple, tuple[Decimal, Decimal]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT x_ChargeDate, ProviderName, BillingCurrency, sum(BilledCost), sum(EffectiveCost) "
                           "FROM core.focus_costs GROUP BY ALL").fetchall()  # fmt: skip
    return {(d, p, c): (b, e) for d, p, c, b, e in rows}


def test_export_folder_loads_with_sources_focus_and_keeps_the_files_totals(tmp_path):
    expected = write_export_folder(tmp_path / "exports")
    assert len({p for _, p, _ in expected}) == 3 and len({d for d, _, _ in expected}) == 3
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=str(tmp_path / "exports"))
    result = run_range(build_definitions(settings), D1, D3, dg.DagsterInstance.ephemeral())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert _warehouse_totals(settings.warehouse_path) == expected
    checks = result.get_asset_check_evaluations()
    assert any(e.check_name == "allocated_costs__conserves_effective_cost" and e.passed for e in checks)
    assert all(e.passed for e in checks), [e.check_name for e in checks if not e.passed]


def test_globs_and_single_files_select_what_they_name(tmp_path):
    write_export_folder(tmp_path / "exports")
    found = resolve_files([str(tmp_path / "exports" / "**" / "*.csv*")], tmp_path / "cache")
    assert sorted(p.name for p in found) == ["2026-10-01.csv", "part_0_0001.csv.gz"]
    single = tmp_path / "exports" / "oci" / "2026-10-01.csv"
    assert [r.day for r in files_by_day(resolve_files([str(single)], tmp_path / "cache"), D1, D3).file_days] == [D1]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        resolve_files([str(tmp_path / "nowhere")], tmp_path / "cache")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}"}.items():
            mp.setenv(k, v)
        client = boto3.client("s3")
        client.create_bucket(Bucket="acme-focus")
        folder = tmp_path_factory.mktemp("s3src")
        expected = write_export_folder(folder / "exports")
        for path in (folder / "exports").rglob("*"):
            if path.is_file():
                client.upload_file(str(path), "acme-focus", f"focus/{path.relative_to(folder / 'exports')}")
        client.put_object(Bucket="acme-focus", Key="focus/manifest.json", Body=b"{}")  # not a FOCUS file
        yield client, expected
    server.stop()


def test_s3_folder_is_fetched_once_to_the_cache_and_read_by_day(s3, tmp_path):
    client, expected = s3
    cache = tmp_path / "cache"
    files = resolve_files(["s3://acme-focus/focus/"], cache)
    assert len(files) == 3 and all(cache in p.parents for p in files)
    assert sorted({r.day for r in files_by_day(files, D1, D3 + timedelta(days=1)).file_days}) == [D1, D2, D3]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert {p: p.stat().st_mtime_ns for p in resolve_files(["s3://acme-focus/focus/"], cache)} == stamps
    assert [p.name for p in resolve_files(["s3://acme-focus/focus/aws/*/*.parquet"], cache)] == [
        "focus-00001.snappy.parquet"]


def test_s3_export_lands_through_the_pipeline_with_the_files_totals(s3, tmp_path):
    _, expected = s3
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH="s3://acme-focus/focus/")
    for day in (D1, D2, D3):
        assert materialize_day(settings, "raw.focus_export_files", day).success
    assert _warehouse_totals(settings.warehouse_path) == expected


def test_other_fsspec_protocols_go_through_fsspec(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/exports/oci/2026-10-01.csv", focus_csv(D1))
    files = resolve_files(["memory://exports/"], tmp_path / "cache")
    assert [r.day for r in files_by_day(files, D1, D2).file_days] == [D1]
    with pytest.raises(RuntimeError, match="oci:// needs an fsspec driver.*ocifs"):  # gs:// az://: test_focus_cloud_storage.py
        resolve_files(["oci://bucket@namespace/focus/"], tmp_path / "cache")


@pytest.fixture(scope="module")
def good_day(tmp_path_factory):
    root = tmp_path_factory.mktemp("focus_dagster")
    folder = root / "exports"
    folder.mkdir()
    (folder / "2026-10-01.csv").write_bytes(focus_csv(D1))
    settings = live_settings(root, "focus", MLCOST_FOCUS_PATH=str(folder))
    assert materialize_day(settings, "raw.focus_export_files", D1).success
    return settings, folder


@pytest.mark.parametrize("kind, field", [("malformed", "BilledCost: cannot parse"),
                                         ("missing_column", "missing mandatory FOCUS column BillingCurrency"),
                                         ("unknown_currency", "field BillingCurrency: unknown currency 'XYZ'")])
def test_bad_file_fails_the_partition_and_keeps_the_previous_data(good_day, kind, field):
    settings, folder = good_day
    rows = _rows(D1)
    if kind == "malformed":
        rows[1]["BilledCost"] = "12,5"
    elif kind == "missing_column":
        rows = [{k: v for k, v in r.items() if k != "BillingCurrency"} for r in rows]
    else:
        rows[0]["BillingCurrency"] = "XYZ"
    path = folder / "2026-10-01.csv"
    good = path.read_bytes()
    path.write_bytes(_csv_bytes(rows))
    try:
        assert_bad_answer_keeps_day(settings, "raw.focus_export_files", D1, "focus_export", f"partition {D1}",
                                    field, str(path))
    finally:
        path.write_bytes(good)
