"""Build a window of core.focus_costs from what raw landing holds: every source, one normalized relation.

Source: raw.* for [start, end). Grain: one row per normalized charge. Given the same raw rows it gives the same
rows, so re-normalizing after a fix needs no provider call. The API sources (small: aggregated pages and rows)
are normalized with polars and stored narrow in core.focus_api_costs; FOCUS export files (large: one row per line
item) are never copied: each is checked in DuckDB SQL (a bad row refuses the window, naming file, row and column)
and the window's catalog rows are recorded in core.focus_export_reads, from which the view core.focus_costs reads
the files (warehouse/focus_view.py). The API rows, the reads and the view change in one transaction: the window is
replaced whole or not at all, and a failed window leaves the previous view.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import duckdb
import polars as pl

from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
from mlcost_pipeline.normalize.azure_cost_management import normalize_cost_query
from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export import STRICT, ExportRead, count_focus_export
from mlcost_pipeline.normalize.focus_schema import POLARS_SCHEMA, NormalizationError
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.warehouse.focus_view import API_TABLE, VIEW, refresh_focus_view, replace_reads
from mlcost_pipeline.warehouse.partition_writes import PartitionWriteError, _fault_pause, replace_window_with
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE, read_payloads

Normalizer = Callable[[list[dict], datetime], pl.DataFrame]

NORMALIZERS: dict[str, Normalizer] = {
    "raw.aws_cost_explorer": normalize_cost_explorer,
    "raw.gcp_billing_export": normalize_billing_export,
    "raw.azure_cost_management": normalize_cost_query,
}
TABLE = VIEW


def focus_export_reads(
    con: duckdb.DuckDBPyConnection, start: date, end: date
) -> tuple[list[ExportRead], datetime | None, dict[str, str | None]]:
    """The window's landed export files, each with the dataset, days and pairing landing decided for it; the
    latest x_FetchedAt; each file's sha256 (as the catalog has it)."""
    rows = con.execute(
        f"SELECT path, any_value(dataset), list(x_ChargeDate ORDER BY x_ChargeDate), "  # noqa: S608 (a constant)
        "list(x_ChargeDate ORDER BY x_ChargeDate) FILTER (WHERE paired), max(x_FetchedAt), any_value(sha256) "
        f"FROM {FOCUS_MANIFEST_TABLE} WHERE x_ChargeDate >= $start AND x_ChargeDate < $end GROUP BY path ORDER BY path",
        {"start": start, "end": end},
    ).fetchall()
    reads = [ExportRead(path, dataset or None, tuple(days), ConvertOptions(paired_days=tuple(paired or ())))
             for path, dataset, days, paired, *_ in rows]  # fmt: skip
    fetched = [r[4] for r in rows if r[4] is not None]
    return reads, max(fetched, default=None), {r[0]: r[5] for r in rows}


def build_api_costs(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """The API sources' charges of the window (Cost Explorer, BigQuery export, Cost Management), one frame."""
    now = datetime.now(UTC).replace(tzinfo=None)
    frames = []
    for table, normalize in NORMALIZERS.items():
        payloads, fetched_at = read_payloads(con, table, start, end)
        if not payloads:
            continue
        try:
            frames.append(normalize(payloads, fetched_at or now))
        except NormalizationError as exc:
            raise NormalizationError(f"{table} window [{start}, {end}): {exc}") from exc
    if not frames:
        return pl.DataFrame(schema=POLARS_SCHEMA)
    return pl.concat(frames, how="vertical").sort("x_ChargeDate", "x_SourceSystem", "x_LineId")


def write_focus_costs(
    con: duckdb.DuckDBPyConnection, start: date, end: date, strict: frozenset[str] = STRICT
) -> int:
    """Replace core.focus_costs for [start, end) with every source's charges; returns the window's rows."""
    api = build_api_costs(con, start, end)
    day = pl.col("x_ChargeDate")
    outside = api.filter((day < start) | (day >= end) | day.is_null())
    if outside.height:
        raise PartitionWriteError(f"{TABLE}: {outside.height} row(s) have x_ChargeDate outside [{start}, {end})")
    reads, fetched_at, sha256 = focus_export_reads(con, start, end)
    try:  # the files are immutable lake copies: checked before the transaction, which then only writes
        exported = count_focus_export(con, reads, start, end, strict=strict) if reads else 0
    except NormalizationError as exc:
        raise NormalizationError(f"{FOCUS_MANIFEST_TABLE} window [{start}, {end}): {exc}") from exc
    ingested_at = (fetched_at or datetime.now(UTC)).replace(tzinfo=None)

    def fill(c: duckdb.DuckDBPyConnection) -> int:
        if api.height:
            c.register("_mlc_api_costs", api.to_arrow())
            try:
                c.execute(f"INSERT INTO {API_TABLE} BY NAME SELECT * FROM _mlc_api_costs")  # noqa: S608 (a constant)
            finally:
                c.unregister("_mlc_api_costs")
        replace_reads(c, start, end, reads, sha256, ingested_at)
        refresh_focus_view(c)
        _fault_pause(TABLE)  # the fault-injection hook (docs/reliability.md) names the relation users query
        return api.height

    return replace_window_with(con, API_TABLE, "x_ChargeDate", start, end, fill) + exported
