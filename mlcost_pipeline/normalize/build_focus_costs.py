"""Build a window of core.focus_costs from what raw landing holds: every source, one normalized frame.

Source: raw.* for [start, end). Grain: one row per normalized charge. Pure: given the same raw rows it returns the
same frame, so re-normalizing after a fix needs no provider call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import duckdb
import polars as pl

from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
from mlcost_pipeline.normalize.azure_cost_management import normalize_cost_query
from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.normalize.focus_schema import POLARS_SCHEMA, NormalizationError
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE, read_payloads

Normalizer = Callable[[list[dict], datetime], pl.DataFrame]

NORMALIZERS: dict[str, Normalizer] = {
    "raw.aws_cost_explorer": normalize_cost_explorer,
    "raw.gcp_billing_export": normalize_billing_export,
    "raw.azure_cost_management": normalize_cost_query,
}


def focus_export_paths(con: duckdb.DuckDBPyConnection, start: date, end: date) -> tuple[list[str], datetime | None]:
    rows = con.execute(
        f"SELECT DISTINCT path, x_FetchedAt FROM {FOCUS_MANIFEST_TABLE} "  # noqa: S608 (a constant)
        "WHERE x_ChargeDate >= $start AND x_ChargeDate < $end ORDER BY path",
        {"start": start, "end": end},
    ).fetchall()
    return sorted({p for p, _ in rows}), max((f for _, f in rows), default=None)


def build_focus_costs(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
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
    paths, fetched_at = focus_export_paths(con, start, end)
    if paths:
        try:
            frames.append(read_focus_export(con, paths, start, end, fetched_at or now))
        except NormalizationError as exc:
            raise NormalizationError(f"{FOCUS_MANIFEST_TABLE} window [{start}, {end}): {exc}") from exc
    if not frames:
        return pl.DataFrame(schema=POLARS_SCHEMA)
    return pl.concat(frames, how="vertical").sort("x_ChargeDate", "x_SourceSystem", "x_LineId")
