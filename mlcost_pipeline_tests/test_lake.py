"""Landing copies each export file that counts into the lake, byte for byte, named by its content: what a run saw
stays readable however the provider rewrites its export, and the same bytes land once (docs/architecture.md)."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.defs.core.focus_costs import focus_costs
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.sample.focus_export import focus_csv
from mlcost_pipeline.warehouse.lake import land_file
from mlcost_pipeline_tests.connector_helpers import live_settings, materialize_day

DAY = date(2026, 10, 1)


def _totals(settings) -> tuple[list, Decimal]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        files = con.execute("SELECT path, sha256, uri FROM raw.focus_export_files").fetchall()
        total = con.execute("SELECT sum(BilledCost) FROM core.focus_costs").fetchall()[0][0]
    return files, total


def test_a_landed_file_is_read_from_its_lake_copy_after_the_export_is_rewritten(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    source = exports / "2026-10-01.csv"
    source.write_bytes(focus_csv(DAY))
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=str(exports))
    assert materialize_day(settings, "raw.focus_export_files", DAY).success
    [(path, sha, uri)], total = _totals(settings)
    assert sha == hashlib.sha256(source.read_bytes()).hexdigest() and uri == str(source)
    assert Path(path) == settings.lake_dir / "files" / sha[:2] / f"{sha}.csv"
    assert Path(path).read_bytes() == source.read_bytes()
    # The provider rewrites the day; normalizing again reads what landing saw.
    source.write_bytes(focus_csv(DAY).replace(b"Oracle", b"Oracle Cloud"))
    result = dg.materialize([focus_costs], partition_key=DAY.isoformat(), resources=build_resources(settings),
                            instance=dg.DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    assert _totals(settings) == ([(path, sha, uri)], total)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT DISTINCT ProviderName FROM core.focus_costs").fetchall() == [("Oracle",)]
    # Landing again takes the new bytes, under their own name; the old copy stays.
    assert materialize_day(settings, "raw.focus_export_files", DAY).success
    [(new_path, new_sha, _)], _ = _totals(settings)
    assert new_sha != sha and Path(new_path).is_file() and Path(path).is_file()


def test_the_same_bytes_land_once(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b" / "other-name.csv"
    b.parent.mkdir()
    a.write_bytes(focus_csv(DAY))
    b.write_bytes(focus_csv(DAY))
    (first, sha), (second, again) = land_file(a, tmp_path / "lake"), land_file(b, tmp_path / "lake")
    assert first == second and sha == again
    assert [p.name for p in (tmp_path / "lake" / "files").rglob("*") if p.is_file()] == [f"{sha}.csv"]
