"""core.focus_costs as a view over the landed files gives the rows the table used to hold, row for row.

Each export fixture (FOCUS CSV and Parquet, CUR 2.0, legacy CUR, an Azure actual + amortized pair) is landed as
the pipeline lands it (files_by_day into a lake, its days in raw.focus_export_files), built with
write_focus_costs, and the view is compared, every column and type, with two references computed from the same
catalog: the insert as it was before the view (INSERT ... SELECT per file, then the UPDATE that suffixed repeated
line ids, copied here verbatim) and read_focus_export.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.build_focus_costs import focus_export_reads, write_focus_costs
from mlcost_pipeline.normalize.focus_export import STRICT, describe, read_focus_export
from mlcost_pipeline.normalize.focus_export_sql import SOURCE, TARGETS
from mlcost_pipeline.normalize.focus_schema import FOCUS_COLUMNS, create_table_sql
from mlcost_pipeline.sources.export_reads import ChosenFile, files_by_day
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.test_aws_cur_shapes import lines, write_cur2_parquet, write_legacy_csv

FIXTURES = Path(__file__).parent / "fixtures"
QUIRKS = FIXTURES / "focus-1.0-sample-quirks" / "focus_sample_quirks.csv"
LEGACY_SAMPLE = FIXTURES / "aws-cur" / "aws_cur_legacy_sample-anonymous-aws-export-dataset.csv"
AZURE = FIXTURES / "azure-cost-details"


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def land(con: duckdb.DuckDBPyConnection, files: list[ChosenFile], start: date, end: date, lake: Path,
         fetched_at: datetime) -> None:  # fmt: skip
    """What the raw.focus_export_files asset does: check, land in the lake, list the window's days per file."""
    landing = files_by_day(files, start, end, lake_dir=lake)
    con.execute(f"DELETE FROM {FOCUS_MANIFEST_TABLE} WHERE x_ChargeDate >= $s AND x_ChargeDate < $e",  # noqa: S608
                {"s": start, "e": end})  # fmt: skip
    con.executemany(
        f"INSERT INTO {FOCUS_MANIFEST_TABLE} (x_ChargeDate, path, sha256, bytes, x_Source, x_FetchedAt, dataset, "  # noqa: S608
        "uri, paired) VALUES (?, ?, ?, ?, 'test', ?, ?, ?, ?)",
        [(r.day, str(r.path), r.sha256, r.path.stat().st_size, fetched_at, r.dataset, r.uri, r.paired)
         for r in landing.file_days],
    )  # fmt: skip


def old_insert_rows(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """The window's export rows as the table held them before the view: HEAD's insert_focus_export + UPDATE."""
    reads, fetched_at, _ = focus_export_reads(con, start, end)
    cur = con.cursor()
    try:
        cur.execute(create_table_sql("_old").replace("CREATE TABLE", "CREATE TEMP TABLE"))
        for read in reads:
            f = describe(cur, read, {}, STRICT)
            sha = cur.execute(f"SELECT sha256 FROM {FOCUS_MANIFEST_TABLE} WHERE path = $p LIMIT 1",  # noqa: S608
                              {"p": read.path}).fetchall()[0][0]  # fmt: skip
            cur.execute(
                f"INSERT INTO _old BY NAME SELECT {f.columns}, {f.line_id} AS x_LineId, "  # noqa: S608
                f"'{SOURCE}' AS x_SourceSystem, CAST(\"ChargePeriodStart\" AS DATE) AS x_ChargeDate, "
                f"$ingested_at AS x_IngestedAt, $export_version AS x_ExportVersion "
                f"FROM {f.relation} WHERE {f.guard(True)}",
                {**f.params, "start": datetime.combine(start, datetime.min.time()),
                 "end": datetime.combine(end, datetime.min.time()), "currencies": _currencies(),
                 "days": list(read.days), "file_id": sha[:16], "ingested_at": fetched_at,
                 "export_version": f"{f.version};sha256={sha[:16]}"},
            )  # fmt: skip
        order = ", ".join(f'"{c}"' for c in ("x_ExportVersion", *TARGETS))
        scope = "FROM _old WHERE x_SourceSystem = 'focus_export'"
        cur.execute(f"""
UPDATE _old AS t SET x_LineId = t.x_LineId || '-' || CAST(r.n AS VARCHAR)
FROM (
    SELECT rid, n FROM (
        SELECT rowid AS rid, row_number() OVER (PARTITION BY x_LineId ORDER BY {order}, rowid) - 1 AS n
        {scope} AND x_LineId IN (SELECT x_LineId {scope} GROUP BY x_LineId HAVING count(*) > 1)
    ) WHERE n > 0
) AS r
WHERE t.rowid = r.rid""")  # noqa: S608
        return cur.sql("SELECT * FROM _old").pl()
    finally:
        cur.close()


def _currencies() -> list[str]:
    from mlcost_pipeline.sources.currencies import ISO_4217

    return sorted(ISO_4217)


def read_rows(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    reads, fetched_at, _ = focus_export_reads(con, start, end)
    return read_focus_export(con, reads, start, end, fetched_at)


def view_rows(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    return con.sql("SELECT * FROM core.focus_costs WHERE x_ChargeDate >= $s AND x_ChargeDate < $e",
                   params={"s": start, "e": end}).pl()  # fmt: skip


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    assert a.height == b.height
    key = ["x_LineId"]
    assert a.sort(key).to_dicts() == b.sort(key).to_dicts()


def _focus_parquet(path: Path, day: date | None = None) -> Path:
    """The FOCUS CSV fixture (or its rows of `day`) as a typed Parquet file: timestamps with a zone, money as
    decimals, the rest text."""
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * REPLACE (TRY_CAST(BilledCost AS DECIMAL(18,6)) AS BilledCost, "
            "TRY_CAST(EffectiveCost AS DECIMAL(18,6)) AS EffectiveCost, "
            "CAST(ChargePeriodStart AS TIMESTAMPTZ) AS ChargePeriodStart, "
            "CAST(ChargePeriodEnd AS TIMESTAMPTZ) AS ChargePeriodEnd) "
            "FROM read_csv($src, all_varchar = true, nullstr = ['', 'null', 'NULL']) "
            "WHERE $day IS NULL OR left(ChargePeriodStart, 10) = CAST($day AS VARCHAR)) TO '"
            + str(path).replace("'", "''") + "' (FORMAT parquet)", {"src": str(QUIRKS), "day": day},
        )  # fmt: skip
    return path


def _focus_csv(path: Path, day: date) -> Path:
    """The FOCUS CSV fixture's rows of `day`, bytes as they are."""
    lines = QUIRKS.read_text().splitlines(keepends=True)  # one line per row in this fixture
    at = next(csv.reader([lines[0]])).index("ChargePeriodStart")
    keep = [line for line in lines[1:] if next(csv.reader([line]))[at].startswith(day.isoformat())]
    path.write_text("".join([lines[0], *keep]))
    return path


def _cases(tmp_path: Path) -> dict[str, tuple[list[ChosenFile], date, date, bool]]:
    """name -> (files, first day, end, build day by day)."""
    cur = tmp_path / "cur"
    cur.mkdir()
    pair = tmp_path / "azure-scope"
    pair.mkdir()
    (pair / "actual.csv").write_bytes((AZURE / "EA2021_ActualCost.csv").read_bytes())
    (pair / "amortized.csv").write_bytes((AZURE / "EA2021_AmortizedCost.csv").read_bytes())
    return {
        "focus-csv": ([ChosenFile(QUIRKS)], date(2026, 9, 1), date(2026, 9, 4), True),
        "focus-parquet": ([ChosenFile(_focus_parquet(tmp_path / "focus.parquet"))], date(2026, 9, 1),
                          date(2026, 9, 4), True),
        "focus-parquet-daily-files": ([ChosenFile(_focus_parquet(tmp_path / f"day{d.day}.parquet", d))
                                       for d in days(date(2026, 9, 1), date(2026, 9, 4))],
                                      date(2026, 9, 1), date(2026, 9, 4), True),
        "focus-csv-daily-files": ([ChosenFile(_focus_csv(tmp_path / f"day{d.day}.csv", d))
                                   for d in days(date(2026, 9, 1), date(2026, 9, 4))],
                                  date(2026, 9, 1), date(2026, 9, 4), True),
        "cur2": ([ChosenFile(write_cur2_parquet(lines(), cur / "cur2.parquet"), dataset=ds.AWS_CUR2)],
                 date(2026, 11, 1), date(2026, 12, 1), False),
        "cur-legacy": ([ChosenFile(write_legacy_csv(lines(), cur / "legacy.csv")), ChosenFile(LEGACY_SAMPLE)],
                       date(2023, 11, 1), date(2023, 11, 15), False),
        "azure-pair": ([ChosenFile(pair / "actual.csv", dataset=ds.AZURE_ACTUAL),
                        ChosenFile(pair / "amortized.csv", dataset=ds.AZURE_AMORTIZED)],
                       date(2024, 2, 1), date(2024, 3, 1), False),
    }  # fmt: skip


@pytest.mark.parametrize("case", ["focus-csv", "focus-parquet", "focus-csv-daily-files", "focus-parquet-daily-files",
                                  "cur2", "cur-legacy", "azure-pair"])
def test_the_view_gives_the_rows_the_old_insert_gave(tmp_path, case):
    files, start, end, daily = _cases(tmp_path)[case]
    windows = [(d, d + timedelta(days=1)) for d in days(start, end)] if daily else [(start, end)]
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    counted = 0
    for i, (s, e) in enumerate(windows):  # each window its own landing time: x_IngestedAt differs per day
        land(con, files, s, e, tmp_path / "lake", datetime(2026, 12, 1, 6, i))
        counted += write_focus_costs(con, s, e)
    old = pl.concat([old_insert_rows(con, s, e) for s, e in windows])
    view = view_rows(con, start, end)
    same_rows(view, old)
    assert counted == view.height > 0
    assert view["x_LineId"].n_unique() == view.height
    if case == "cur2":  # the recurring fees with unused commitment: one source row, two charges
        assert view.filter(pl.col("x_LineId").str.count_matches("-") == 2).height == 2
    if daily:
        assert view["x_IngestedAt"].n_unique() == len(windows)
    same_rows(view, pl.concat([read_rows(con, s, e) for s, e in windows]))
    text = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'focus_costs'").fetchall()[0][0]
    # Files of one layout (format, dataset, columns, pairing) are read in one scan: one SELECT per layout.
    layouts = con.execute("SELECT count(DISTINCT dataset), count(DISTINCT path) FROM core.focus_export_reads")
    assert text.count("UNION ALL BY NAME") == layouts.fetchall()[0][0]
    described = con.execute("DESCRIBE core.focus_costs").fetchall()
    assert [(r[0], r[1]) for r in described] == FOCUS_COLUMNS


def test_the_view_reads_the_same_from_any_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "focus.csv").write_bytes(QUIRKS.read_bytes())
    monkeypatch.chdir(folder)
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)
    start, end = date(2026, 9, 1), date(2026, 9, 4)
    con.executemany(f"INSERT INTO {FOCUS_MANIFEST_TABLE} (x_ChargeDate, path) VALUES (?, 'focus.csv')",  # noqa: S608
                    [(d,) for d in days(start, end)])  # a relative path, as a hand-written catalog may hold
    assert write_focus_costs(con, start, end) == 36
    here = con.execute("SELECT count(*), sum(BilledCost) FROM core.focus_costs").fetchall()
    con.close()
    monkeypatch.chdir(tmp_path.parent)
    with duckdb.connect(str(path), read_only=True) as reader:
        assert reader.execute("SELECT count(*), sum(BilledCost) FROM core.focus_costs").fetchall() == here
        text = reader.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'focus_costs'").fetchall()[0][0]
    assert f"'{folder / 'focus.csv'}'" in text
