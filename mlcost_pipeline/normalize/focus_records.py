"""FOCUS-shaped records from an API (the GCP native FOCUS export table) -> core.focus_costs rows.

Source: landed records whose keys are FOCUS column names (values as the API gave them: text, numbers, a Tags
object). Grain: one row per record. They are read by the same SQL as FOCUS export files (focus_export_sql), so the
parsing, the strict checks (money, currency, charge period, identity) and the tolerated ones are the same; a
refused record raises NormalizationError naming the record (1-based, in landing order) and the column.
Key: x_LineId = md5 over (source system, the identifying columns), `-<n>` on the n-th repeat in record order.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime

import duckdb
import polars as pl
import pyarrow as pa

from mlcost_pipeline.normalize.focus_export import _naive_utc, explain_bad_row
from mlcost_pipeline.normalize.focus_export_sql import BAD_ROW_MARKER, SOURCE, STRICT_COLUMNS, file_sql
from mlcost_pipeline.normalize.focus_schema import POLARS_SCHEMA, NormalizationError, conform
from mlcost_pipeline.sources.currencies import ISO_4217

_EVER = {"start": datetime(1, 1, 1), "end": datetime(9999, 12, 31)}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def normalize_focus_records(
    payloads: list[dict], ingested_at: datetime, source_system: str, *,
    strict: frozenset[str] = frozenset(STRICT_COLUMNS),
) -> pl.DataFrame:
    """The records conformed to core.focus_costs (x_SourceSystem = source_system)."""
    if not payloads:
        return pl.DataFrame(schema=POLARS_SCHEMA)
    names = sorted({k for p in payloads for k in p if not k.startswith("x_") or k in ("x_ResourceGroupName",
                                                                                       "x_CurrencyConversionRate")})
    table = pa.table({n: pa.array([_text(p.get(n)) for p in payloads], pa.string()) for n in names})
    where = f"{source_system} FOCUS records"
    con = duckdb.connect()
    try:
        # A table, not a registered view: the bad-row explanation runs on a cursor, which sees only tables.
        con.register("_mlc_arrow", table)
        con.execute("CREATE TABLE _mlc_records AS SELECT * FROM _mlc_arrow")
        scan = "(SELECT *, row_number() OVER () AS __row FROM _mlc_records)"
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * EXCLUDE (__row) FROM {scan}").fetchall()]  # noqa: S608
        f = file_sql(where, columns, {}, source=scan, strict=strict, dataset="focus-records")
        params = {k: v for k, v in f.params.items() if k != "path"}
        sql = (f"SELECT {f.columns}, {f.line_hash} AS x_LineId, CAST(\"ChargePeriodStart\" AS DATE) AS x_ChargeDate "  # noqa: S608
               f"FROM {f.relation} WHERE {f.guard()} ORDER BY __row")
        try:
            df = con.sql(sql, params={**params, **_EVER, "currencies": sorted(ISO_4217), "stem": source_system}).pl()
        except duckdb.Error as exc:
            if BAD_ROW_MARKER in str(exc):  # "record N", not "file ... row N": these rows came from an API
                message = str(explain_bad_row(con, replace(f, params=params), _EVER))
                raise NormalizationError(message.replace(f"{SOURCE}: file {where}: row", f"{where}: record")) from None
            raise NormalizationError(f"{where}: {exc}") from exc
    finally:
        con.close()
    repeat = pl.col("x_LineId").cum_count().over("x_LineId") - 1
    df = df.with_columns(
        pl.when(repeat > 0).then(pl.col("x_LineId") + "-" + repeat.cast(pl.String)).otherwise(pl.col("x_LineId"))
        .alias("x_LineId"),
        pl.lit(source_system).alias("x_SourceSystem"), pl.lit(_naive_utc(ingested_at)).alias("x_IngestedAt"),
        pl.lit("focus-records").alias("x_ExportVersion"),
    )  # fmt: skip
    return conform(df, source_system)
