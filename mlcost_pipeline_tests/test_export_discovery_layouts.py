"""Every documented export layout, on the local disk and through S3 (moto's server): every charge counted once.

Each tree (test_export_discovery_trees_azure/_aws) is written to a folder or uploaded to a bucket, in the order its
modification times must have; `resolve_exports` discovers and fetches it. The test asserts which files count
for which days and with which dataset kind, then reads the fetched files with DuckDB and checks that their
BilledCost over the days they count for equals, day by day, what the tree's current runs hold (computed from the
bytes with csv and Decimal, never by the code under test).
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.focus_export import ExportRead, read_focus_export
from mlcost_pipeline.sources.export_stores import resolve_exports
from mlcost_pipeline_tests.test_export_discovery_trees import Tree
from mlcost_pipeline_tests.test_export_discovery_trees_aws import (
    aws_create_new,
    aws_overwrite,
    cur_assemblies,
    cur_overwrite_zip,
    cur_parquet,
    plain_folder,
)
from mlcost_pipeline_tests.test_export_discovery_trees_azure import (
    azure_create_new_with_export_time,
    azure_older_manifest,
    azure_overwrite_and_types,
    azure_reruns_without_export_time,
    azure_selected_dates,
    azure_unpartitioned,
)

BASE_MTIME = 1_790_000_000  # 2026-09-21: a fixed clock for the local files' modification times

LAYOUTS = {f.__name__: f for f in (azure_create_new_with_export_time, azure_reruns_without_export_time,
                                   azure_overwrite_and_types, azure_selected_dates, azure_older_manifest,
                                   azure_unpartitioned, aws_overwrite, aws_create_new, cur_assemblies,
                                   cur_overwrite_zip, cur_parquet, plain_folder)}  # fmt: skip


def everything() -> Tree:
    """Every layout under one root: no layout's decisions reach another's files."""
    tree = Tree()
    for build in LAYOUTS.values():
        tree.merge(build())
    return tree


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        }.items():
            mp.setenv(k, v)
        yield boto3.client("s3")
    server.stop()


def write_local(tree: Tree, root: Path) -> str:
    for key, data in tree.files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = BASE_MTIME + 60 * tree.rank[key]
        os.utime(path, (stamp, stamp))
    return str(root)


def upload(client, tree: Tree, bucket: str, prefix: str = "exports") -> str:
    """Objects in rank order; S3 keeps LastModified to the second, so ranks that decide are a second apart."""
    client.create_bucket(Bucket=bucket)
    ranks = sorted(set(tree.rank.values()))
    for rank in ranks:
        if rank != ranks[0]:
            time.sleep(1.05)
        for key in sorted(k for k, r in tree.rank.items() if r == rank):
            client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=tree.files[key])
    return f"s3://{bucket}/{prefix}"


def chosen_totals(pairs) -> dict[date, Decimal]:
    """BilledCost per day of the fetched files over the days each counts for, read with DuckDB."""
    totals: dict[date, Decimal] = {}
    with duckdb.connect() as con:
        for f, path in pairs:
            reader = (
                "read_parquet($p)" if str(path).endswith(".parquet") else "read_csv($p, all_varchar = true)"
            )
            got = con.execute(f'SELECT CAST(left("ChargePeriodStart", 10) AS DATE), '  # noqa: S608
                              f'sum(CAST("BilledCost" AS DECIMAL(38, 12))) FROM {reader} GROUP BY ALL',
                              {"p": str(path)}).fetchall()  # fmt: skip
            for day, billed in got:
                if f.days is None or day in f.days:
                    totals[day] = totals.get(day, Decimal(0)) + billed
    return totals


def place(tree: Tree, where: str, name: str, tmp_path: Path, s3_client) -> str:
    if where == "local":
        return write_local(tree, tmp_path / "exports")
    return upload(s3_client, tree, name.replace("_", "-")[:63])


@pytest.fixture(params=["local", "s3"])
def where(request):
    return request.param


@pytest.mark.parametrize("layout", [*LAYOUTS, "everything"])
def test_each_layout_counts_every_charge_once(layout, where, tmp_path, request):
    tree = everything() if layout == "everything" else LAYOUTS[layout]()
    root = place(tree, where, layout, tmp_path, request.getfixturevalue("s3") if where == "s3" else None)
    pairs, found = resolve_exports([root], tmp_path / "cache")
    chosen = {f.uri.removeprefix(root + "/"): f.days for f, _ in pairs}
    assert chosen == tree.expected, found.lines()
    assert {f.uri.removeprefix(root + "/"): f.dataset for f, _ in pairs} == tree.datasets
    assert chosen_totals(pairs) == tree.totals
    assert len(tree.totals) > 0
    if where == "s3":
        assert all((tmp_path / "cache") in path.parents for _, path in pairs)  # read from the local cache


FOCUS_CONTENT = [n for n, build in LAYOUTS.items() if set(build().datasets.values()) <= {ds.FOCUS, None}]


@pytest.mark.parametrize("layout", FOCUS_CONTENT)
def test_the_focus_reader_lands_each_charge_once_from_what_discovery_chose(layout, tmp_path):
    # The trees hold FOCUS files, so only layouts whose dataset is FOCUS (or left to the reader) are read here.
    tree = LAYOUTS[layout]()
    pairs, _ = resolve_exports([write_local(tree, tmp_path / "exports")], tmp_path / "cache")
    reads = [
        ExportRead(str(path), dataset=f.dataset, days=f.days, expected_rows=f.expected_rows)
        for f, path in pairs
    ]
    with duckdb.connect() as con:
        frame = read_focus_export(con, reads, date(2026, 8, 1), date(2026, 11, 1), datetime(2026, 11, 3))
    per_day = frame.group_by("x_ChargeDate").agg(pl.col("BilledCost").sum())
    assert dict(zip(per_day["x_ChargeDate"], per_day["BilledCost"], strict=True)) == tree.totals
