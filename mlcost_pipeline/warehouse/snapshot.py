"""The BI snapshot: a DuckDB file that BI tools read while the pipeline keeps writing the warehouse.

What it holds: every table of the warehouse's `core` and `marts` schemas as they stand (not `raw`: provider-native
JSON is for re-normalizing, not for dashboards); `core.focus_costs` as the warehouse has it, a view over the copied
API rows and the lake's export files (absolute paths: line items are read in place, never copied); the stable
views of schema `bi` (VIEWS below, documented in docs/bi.md; the wide KPI views of kpi_views.py, documented in
docs/kpis.md), and `bi.snapshot_info` / `bi.snapshot_tables` (when it was published, after which run, rows and
days per table).

How it is published: the copy is written to a new file next to the target while holding the warehouse's write
lock, so it is the state between two writes, never half a run; it is then renamed over the old snapshot with
`os.replace`, still under the lock, so publications land in the order they were copied. A reader that has the old
file open keeps reading the old file (its inode lives until the reader closes it); the next connection opens the
new one. Neither side ever waits for the other.
"""

# ruff: noqa: S608
# Identifiers come from information_schema and pass checked_identifier; view SQL is built from the constants below.

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from mlcost_pipeline.allocation.tables import copy_line_view
from mlcost_pipeline.warehouse.connection import checked_identifier, write_connection
from mlcost_pipeline.warehouse.focus_view import VIEW as FOCUS_VIEW
from mlcost_pipeline.warehouse.focus_view import view_sql
from mlcost_pipeline.warehouse.kpi_views import DASHBOARD_VIEWS, UNPUBLISHED_MARTS

COPIED_SCHEMAS = ("core", "marts")
# A view's day range, read from the table it is built on (evaluating it would split every line again).
_RANGE_FROM = {"core.allocated_costs": "core.allocated_cells"}
VIEW_SCHEMA = "bi"


class SnapshotError(RuntimeError):
    pass


@dataclass(frozen=True)
class View:
    source: str  # schema.table in the snapshot
    columns: tuple[str, ...]
    comment: str


# The stable BI interface: fixed column lists, so a column added to a core table or a mart does not change a
# dashboard's query, and a column a view needs that disappears stops the publication with a clear error instead.
VIEWS: dict[str, View] = {
    "bi.focus_costs": View(
        "core.focus_costs",
        ("x_ChargeDate", "ProviderName", "ServiceProviderName", "InvoiceIssuerName", "BillingAccountId",
         "BillingAccountName", "SubAccountId", "SubAccountName", "ServiceCategory", "ServiceName",
         "ChargeCategory", "ChargeClass", "ChargeDescription", "RegionId", "ResourceId", "ResourceName",
         "ResourceType", "SkuId", "PricingCategory", "ConsumedQuantity", "ConsumedUnit", "BillingCurrency",
         "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ChargePeriodStart", "ChargePeriodEnd",
         "BillingPeriodStart", "BillingPeriodEnd", "Tags", "x_LineId", "x_SourceSystem", "x_Estimated"),
        "Every normalized charge, FOCUS 1.2 column names; one row per charge and UTC day (x_ChargeDate).",
    ),
    "bi.allocated_costs": View(
        "core.allocated_costs",
        ("charge_date", "project", "model", "team", "environment", "cost_center", "run_id", "provider",
         "service_name", "service_category", "sub_account_id", "resource_id", "billing_currency", "amount",
         "reporting_currency", "amount_reporting", "cost_basis", "method", "rule_id", "ratio", "x_LineId",
         "x_SourceSystem", "AllocatedMethodId"),
        "Each charge's EffectiveCost given an owner; one row per piece of a charge. Sums to bi.focus_costs.",
    ),
    "bi.cost_per_project_daily": View(
        "marts.cost_per_project_daily",
        ("charge_date", "project", "provider", "billing_currency", "amount", "tagged_amount", "line_count",
         "reporting_currency", "amount_reporting", "training_amount", "serving_amount", "storage_amount",
         "orchestration_amount", "monitoring_amount", "tooling_amount", "data_pipeline_amount", "other_amount",
         "mtd_amount", "mtd_amount_reporting"),
        "Allocated cost per UTC day, project, provider and billing currency, by workload, with month-to-date.",
    ),
    "bi.cost_per_model_daily": View(
        "marts.cost_per_model_daily",
        ("charge_date", "model", "project", "billing_currency", "amount", "line_count", "reporting_currency",
         "amount_reporting", "training_amount", "serving_amount", "storage_amount", "data_pipeline_amount",
         "other_amount"),
        "Allocated cost that names a model, per UTC day, model, project and billing currency, by workload.",
    ),
    "bi.kpi_daily": View(
        "marts.kpi_daily",
        ("date", "scope_type", "scope_id", "kpi", "value", "unit"),
        "Every KPI of docs/kpis.md, one row per (date, scope_type, scope_id, kpi).",
    ),
    "bi.ml_runs": View(
        "core.ml_runs",
        ("run_id", "experiment_id", "experiment_name", "run_name", "status", "start_time", "end_time",
         "duration_hours", "project_tag", "model_tag", "instance_type", "gpu_count", "cluster", "workload",
         "estimator", "gpu_hours", "params", "metrics", "x_RunDate"),
        "MLflow runs by UTC start day (x_RunDate); one row per run.",
    ),
    "bi.ml_model_versions": View(
        "core.ml_model_versions",
        ("model_name", "version", "run_id", "status", "current_stage", "aliases", "created_at",
         "last_updated_at", "is_production", "production_at"),
        "Registered model versions with their source run and aliases; one row per (model_name, version).",
    ),
}  # fmt: skip

@dataclass(frozen=True)
class PublishedSnapshot:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    views: tuple[str, ...]
    published_at: datetime
    size_bytes: int

    def summary(self) -> str:
        rows = sum(self.tables.values())
        return (
            f"published {self.path} for BI: {len(self.tables)} tables ({rows:,} rows), "
            f"{len(self.views)} views in schema {VIEW_SCHEMA}, {self.size_bytes / 1e6:.1f} MB"
        )


def bi_snapshot_path(warehouse_path: Path | str) -> Path:
    """`<warehouse stem>_bi.duckdb` next to the warehouse: warehouse/mlcost.duckdb -> warehouse/mlcost_bi.duckdb."""
    path = Path(warehouse_path)
    return path.with_name(f"{path.stem}_bi{path.suffix or '.duckdb'}")


def publish_bi_snapshot(
    warehouse_path: Path | str, target: Path | str | None = None, run_id: str | None = None
) -> PublishedSnapshot:
    """Copy the warehouse's core and marts tables to a new snapshot file and rename it over `target`."""
    warehouse_path = Path(warehouse_path)
    target = Path(target) if target is not None else bi_snapshot_path(warehouse_path)
    if not warehouse_path.exists():
        raise SnapshotError(
            f"no warehouse at {warehouse_path}: materialize something first (mlcost materialize)"
        )
    if target.resolve() == warehouse_path.resolve():
        raise SnapshotError(f"the BI snapshot cannot replace the warehouse itself ({warehouse_path})")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with write_connection(warehouse_path) as con:
            published_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            tables = _copy_tables(con, staging)
            focus = focus_view_sql(con)
            views = _finish(staging, tables, published_at, warehouse_path.name, run_id, focus)
            _fsync(staging)
            size = staging.stat().st_size
            # A WAL left by someone who opened the old snapshot read-write would be replayed into the new file.
            Path(f"{target}.wal").unlink(missing_ok=True)
            os.replace(staging, target)
            _fsync_dir(target.parent)
    except BaseException:
        staging.unlink(missing_ok=True)
        Path(f"{staging}.wal").unlink(missing_ok=True)
        raise
    return PublishedSnapshot(target, tables, views, published_at, size)


def _copy_tables(con: duckdb.DuckDBPyConnection, staging: Path) -> dict[str, int]:
    found = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
        "AND list_contains($schemas, table_schema) ORDER BY 1, 2",
        {"schemas": list(COPIED_SCHEMAS)},
    ).fetchall()
    tables = [checked_identifier(f"{schema}.{name}") for schema, name in found]
    con.execute("ATTACH $path AS bi_staging", {"path": str(staging)})
    try:
        for schema in COPIED_SCHEMAS:
            con.execute(f"CREATE SCHEMA bi_staging.{schema}")
        counts = {}
        for table in tables:
            con.execute(f"CREATE TABLE bi_staging.{table} AS SELECT * FROM {table}")
            counts[table] = con.execute(f"SELECT count(*) FROM bi_staging.{table}").fetchall()[0][0]
    finally:
        con.execute("DETACH bi_staging")
    return counts


def focus_view_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse's core.focus_costs view text (None for a warehouse whose core.focus_costs is still a table)."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'core' AND table_name = 'focus_costs'"
    ).fetchall()
    return view_sql(con) if kind == [("VIEW",)] else None


def _finish(
    staging: Path, tables: dict[str, int], published_at: datetime, source: str, run_id: str | None,
    focus: str | None = None,
) -> tuple[str, ...]:
    """Views and the snapshot's own description, written in the staging file itself (views bind to its tables).

    The file is attached under a fixed alias: opened directly, its catalog would be named after the file, and a
    file called bi.duckdb would make `bi.<view>` ambiguous. core.focus_costs is the warehouse's view, over the
    copied API rows and the same lake files (absolute paths): line items are never copied.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute("ATTACH $path AS bi_staging", {"path": str(staging)})
        con.execute("USE bi_staging")
        if focus is not None:
            con.execute(f"CREATE VIEW {FOCUS_VIEW} AS\n{focus}")
            tables[FOCUS_VIEW] = con.execute(f"SELECT count(*) FROM {FOCUS_VIEW}").fetchall()[0][0]
        copy_line_view(con, tables)  # core.allocated_costs: a view over the copied cells, as in the warehouse
        con.execute(f"CREATE SCHEMA {VIEW_SCHEMA}")
        views = [*_fixed_views(con, tables), *_mart_views(con, tables), *_dashboard_views(con, tables)]
        con.execute(
            f"CREATE TABLE {VIEW_SCHEMA}.snapshot_info AS SELECT $published_at::TIMESTAMP AS published_at, "
            "$source AS source_warehouse, $run_id AS after_run_id, $tables::INTEGER AS table_count",
            {"published_at": published_at, "source": source, "run_id": run_id, "tables": len(tables)},
        )
        con.execute(
            f"CREATE TABLE {VIEW_SCHEMA}.snapshot_tables (table_name VARCHAR, row_count BIGINT, "
            "first_day DATE, last_day DATE)"
        )
        for table, rows in tables.items():
            first, last = _day_range(con, table)
            con.execute(
                f"INSERT INTO {VIEW_SCHEMA}.snapshot_tables VALUES ($t, $n, $first, $last)",
                {"t": table, "n": rows, "first": first, "last": last},
            )
        con.execute("USE memory")
        con.execute("DETACH bi_staging")  # checkpoints the file
    finally:
        con.close()
    if Path(f"{staging}.wal").exists():
        raise SnapshotError(
            f"{staging}: DuckDB left a WAL after CHECKPOINT; not publishing a file that needs it"
        )
    return tuple(views)


def _fixed_views(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> list[str]:
    made = []
    for name, view in VIEWS.items():
        if view.source not in tables:
            continue  # e.g. a mart not materialized yet: its view appears once it is
        present = {r[0] for r in con.execute(f"DESCRIBE {view.source}").fetchall()}
        missing = [c for c in view.columns if c not in present]
        if missing:
            raise SnapshotError(
                f"view {name}: {view.source} has no column(s) {missing}; the view is a documented contract "
                "(docs/bi.md): map the new column names in mlcost_pipeline/warehouse/snapshot.py VIEWS"
            )
        columns = ", ".join(f'"{c}"' for c in view.columns)
        con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM {view.source}")
        _comment(con, name, view.comment)
        made.append(name)
    return made


def _mart_views(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> list[str]:
    # A mart without a fixed view still gets bi.<mart>, with the columns its SQL file documents.
    made = []
    for table in tables:
        schema, name = table.split(".")
        view = f"{VIEW_SCHEMA}.{name}"
        if schema == "marts" and view not in VIEWS and view not in DASHBOARD_VIEWS and table not in UNPUBLISHED_MARTS:
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {table}")
            _comment(con, view, f"All columns of {table}; see dbt_like_sql/marts/{name}.sql.")
            made.append(view)
    return made


def _dashboard_views(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> list[str]:
    if "marts.kpi_daily" not in tables:
        return []
    for name, (sql, comment) in DASHBOARD_VIEWS.items():
        con.execute(f"CREATE VIEW {name} AS\n{sql}")
        _comment(con, name, comment)
    return list(DASHBOARD_VIEWS)


def _comment(con: duckdb.DuckDBPyConnection, view: str, text: str) -> None:
    # COMMENT ON takes no parameters; the text is one of our constants, quoted as a SQL string literal.
    con.execute(f"COMMENT ON VIEW {view} IS '{text.replace(chr(39), chr(39) * 2)}'")


def _day_range(con: duckdb.DuckDBPyConnection, table: str) -> tuple[object, object]:
    table = _RANGE_FROM.get(table, table)
    dates = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[1] == "DATE"]
    if not dates:
        return None, None
    day = checked_identifier(dates[0])
    return tuple(con.execute(f'SELECT min("{day}"), max("{day}") FROM {table}').fetchall()[0])


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
