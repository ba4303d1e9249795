"""dbt_like_sql/ in Dagster: one asset per SQL model, one blocking asset check per singular test.

Discovery and dependency analysis live in `mlcost_pipeline.sql_models`; this module only runs the SQL (DuckDB,
through the `warehouse` resource) and reports what it wrote. The runner owns the DDL: a partitioned model
replaces its date window, a full-rebuild model replaces its whole table.

A test that reads only MLflow-fed tables (ml_runs.MLFLOW_TABLES and the models built only from them, found from
the SQL) passes as not applicable, with the reason in its metadata, when MLflow is not among the sources: in a
billing-only setup those tables are empty by design, and an empty check proves nothing.
"""

# ruff: noqa: S608
# This module is the SQL runner: it embeds model files and identifiers that discovery checked
# (`sql_models._check_name`); every value is bound as a parameter.

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.defs.core.ml_runs import MLFLOW_OFF, MLFLOW_TABLES
from mlcost_pipeline.defs.metadata import preview, window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import kpi_sql_params
from mlcost_pipeline.sql_models import (
    CONFIG_PARAMS,
    SqlModel,
    SqlModelError,
    SqlTest,
    TableKey,
    build_order,
    discover,
    discover_tests,
    fed_only_by,
    reads_only,
    validate_tests,
)
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql

PREVIEW_ROWS = 10


def build_sql_model_defs(
    root: Path,
    known_external: Mapping[TableKey, dg.AssetKey] | set[TableKey],
    config: Mapping[str, object] | None = None,
    mlflow_tables: frozenset[TableKey] = MLFLOW_TABLES,
    mlflow_enabled: bool = True,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Assets and checks for every model and test under `root`; `known_external` are the tables Python assets
    write (a set of (schema, table), or a mapping to their asset keys when those differ from [schema, table]).
    `config` holds the CONFIG_PARAMS values (Settings.sql_params; the settings' defaults when None).
    `mlflow_tables` are the external tables only MLflow feeds; without `mlflow_enabled` the tests that read only
    those (and the models built only from them) pass as not applicable."""
    config = dict(kpi_sql_params() if config is None else config)
    unknown = sorted(set(config) - CONFIG_PARAMS)
    if unknown:
        raise SqlModelError(f"unknown SQL configuration parameter(s) {unknown}; known: {sorted(CONFIG_PARAMS)}")
    if isinstance(known_external, Mapping):
        external = dict(known_external)
    else:
        external = {k: dg.AssetKey(list(k)) for k in known_external}
    models = build_order(discover(root), set(external))
    tests = discover_tests(root)
    validate_tests(tests, models, set(external))
    for item in [*models, *tests]:
        missing = sorted(item.config_params - set(config))
        if missing:
            raise SqlModelError(f"{item.path}: reads ${', $'.join(missing)}, which no setting provides")
    keys = {**external, **{m.key: dg.AssetKey(list(m.key)) for m in models}}
    mlflow_fed = fed_only_by(models, set(mlflow_tables) & set(external))
    return [_model_asset(_configured(m, config), keys, config) for m in models], [
        _test_check(t, keys, config, needs_mlflow=reads_only(t, mlflow_fed),
                    not_applicable=None if mlflow_enabled else MLFLOW_OFF) for t in tests
    ]


def _configured(model: SqlModel, config: Mapping[str, object]) -> SqlModel:
    """The model with the configuration it reads folded into its code version (a changed metric list is a change)."""
    if not model.config_params:
        return model
    used = json.dumps({k: config[k] for k in sorted(model.config_params)}, sort_keys=True)
    return replace(model, code_version=hashlib.sha256(f"{model.code_version}:{used}".encode()).hexdigest()[:12])


def _bound(names: frozenset[str], config: Mapping[str, object]) -> dict[str, object]:
    return {k: config[k] for k in sorted(names)}


def check_name(test: SqlTest) -> str:
    """`<table>__<test>`, without repeating the table when the test file already starts with it."""
    table = test.model[1]
    return test.name if test.name.startswith(table + "__") else f"{table}__{test.name}"


def _model_asset(
    model: SqlModel, keys: Mapping[TableKey, dg.AssetKey], config: Mapping[str, object]
) -> dg.AssetsDefinition:
    partitioned = model.partitioned_by is not None
    bound = _bound(model.config_params, config)

    @dg.asset(
        key=keys[model.key],
        deps=list(dict.fromkeys(keys[d] for d in sorted(model.deps))),  # several tables of one asset: once
        code_version=model.code_version,
        description=model.description or None,
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        metadata={
            "dagster/table_name": model.qualified_name,
            "sql": dg.MetadataValue.md(f"```sql\n{model.sql.rstrip()}\n```"),
            "dagster/code_references": dg.CodeReferencesMetadataValue(
                code_references=[dg.LocalFileCodeReference(file_path=str(model.path.resolve()))]
            ),
        },
        partitions_def=daily_partitions if partitioned else None,
        backfill_policy=single_run_backfill if partitioned else None,
    )
    def sql_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        window = partition_window(context) if partitioned else None
        with warehouse.writer() as con:
            try:
                if window:
                    _replace_window(con, model, *window, bound)
                else:
                    _rebuild(con, model, bound)
            except duckdb.Error as e:
                raise SqlModelError(f"{model.path}: {e}") from e
            metadata = _written_metadata(con, model, window)
        return dg.MaterializeResult(metadata=metadata)

    return sql_model


def _replace_window(
    con: duckdb.DuckDBPyConnection, model: SqlModel, start: date, end: date, config: Mapping[str, object]
) -> int:
    table, column = model.qualified_name, model.partitioned_by
    params = {"start_date": start, "end_date": end, **config}
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {model.schema}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM (\n{model.statement}\n) AS _model WHERE false",
        params,
    )
    _sync_columns(con, model, params, start, end)
    # A row outside the window would survive the next rerun's delete and be counted twice, so it stops the write.
    # DuckDB does not push a filter calling error() below the model's own WHERE, so only output rows are tested.
    guarded = (
        f"SELECT * FROM (\n{model.statement}\n) AS _model "
        f'WHERE CASE WHEN "{column}" >= $start AND "{column}" < $end THEN true ELSE error('
        f"'{table}: {column} ' || coalesce(CAST(\"{column}\" AS VARCHAR), 'NULL') || "
        f"' is outside the partition window; filter the SELECT on $start_date / $end_date') END"
    )
    return replace_window_sql(con, table, column, start, end, guarded, params)


def _sync_columns(
    con: duckdb.DuckDBPyConnection, model: SqlModel, params: dict[str, object], start: date, end: date
) -> None:
    """Rebuild a partitioned table from its inputs when its SELECT's columns changed (an upgrade).

    Other partitions already sit in the table, so only replacing the window would leave them with the old columns
    (NULL in new ones, failing whole-table checks). A mart is derived, so the days it already holds are recomputed
    from its inputs together with the window, in one transaction: the table is replaced whole or not at all.
    """
    described = con.execute(f"DESCRIBE SELECT * FROM (\n{model.statement}\n) AS _model", params).fetchall()
    wanted = sorted((r[0].lower(), r[1]) for r in described)
    present = sorted((r[0].lower(), r[1]) for r in con.execute(f"DESCRIBE {model.qualified_name}").fetchall())
    if wanted == present:
        return
    column, table = model.partitioned_by, model.qualified_name
    lo, hi = con.execute(f'SELECT min("{column}"), max("{column}") FROM {table}').fetchall()[0]
    lo = min(start, lo) if lo is not None else start
    hi = max(end, hi + timedelta(days=1)) if hi is not None else end
    widened = {**params, "start_date": lo, "end_date": hi}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM (\n{model.statement}\n) AS _model "
            f'WHERE "{column}" >= $start_date AND "{column}" < $end_date',
            widened,
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    dg.get_dagster_logger().warning(
        f"{table}: its columns changed ({present} -> {wanted}); rebuilt from its inputs for {lo}..{hi} (end "
        "exclusive). Downstream marts of days outside this run keep their values until they are rematerialized."
    )


def _rebuild(con: duckdb.DuckDBPyConnection, model: SqlModel, config: Mapping[str, object]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {model.schema}")
        con.execute(f"CREATE OR REPLACE TABLE {model.qualified_name} AS\n{model.statement}", config)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _written_metadata(
    con: duckdb.DuckDBPyConnection, model: SqlModel, window: tuple[date, date] | None
) -> dict[str, object]:
    """Row count, exact cost total, preview and column schema of what was written (the window, if partitioned)."""
    table = model.qualified_name
    described = con.execute(f"DESCRIBE {table}").fetchall()
    columns = {r[0].lower() for r in described}
    where, params = "", {}
    if window:
        where = f'WHERE "{model.partitioned_by}" >= $start AND "{model.partitioned_by}" < $end'
        params = {"start": window[0], "end": window[1]}
    n = con.execute(f"SELECT count(*) FROM {table} {where}", params).fetchall()[0][0]
    metadata = window_metadata(*window, n) if window else {"dagster/row_count": n}
    if "amount" in columns:
        metadata.update(_amount_totals(con, table, where, params, "billing_currency" in columns))
    rows = con.sql(f"SELECT * FROM {table} {where} ORDER BY ALL LIMIT {PREVIEW_ROWS}", params=params).pl()
    metadata["preview"] = preview(rows, PREVIEW_ROWS)
    metadata["dagster/column_schema"] = dg.TableSchema(
        columns=[
            dg.TableColumn(name, type_, constraints=dg.TableColumnConstraints(nullable=null == "YES"))
            for name, type_, null, *_ in described
        ]
    )
    return metadata


def _amount_totals(
    con: duckdb.DuckDBPyConnection, table: str, where: str, params: dict[str, object], has_currency: bool
) -> dict[str, object]:
    # Text keeps the decimal exact; the float is only for the UI's plot, and only when there is one currency
    # (a sum across currencies means nothing).
    currency = "billing_currency" if has_currency else "NULL"
    totals = con.execute(
        f"SELECT {currency}, sum(amount) FROM {table} {where} GROUP BY ALL ORDER BY ALL", params
    ).fetchall()
    if not totals:
        return {"total_amount": "0", "total_amount_float": 0.0}
    text = "; ".join(f"{total} {cur}" if cur else str(total) for cur, total in totals)
    metadata: dict[str, object] = {"total_amount": text}
    if len(totals) == 1 and totals[0][1] is not None:
        metadata["total_amount_float"] = float(totals[0][1])
    return metadata


def _test_check(
    test: SqlTest,
    keys: Mapping[TableKey, dg.AssetKey],
    config: Mapping[str, object],
    needs_mlflow: bool = False,
    not_applicable: str | None = None,
) -> dg.AssetChecksDefinition:
    bound = _bound(test.config_params, config)
    description = test.description
    if needs_mlflow:
        description += "\n\nNot applicable (it passes and says why) when MLflow is not among MLCOST_SOURCES."

    @dg.asset_check(
        asset=keys[test.model],
        name=check_name(test),
        description=description or None,
        blocking=True,
        additional_deps=list(dict.fromkeys(
            keys[r] for r in sorted(test.refs - {test.model}) if keys[r] != keys[test.model]
        )),
    )
    def sql_test(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        reason = not_applicable if needs_mlflow else None
        if reason:
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"not_applicable": reason, "sql_test": str(test.path)},
            )
        # The write lock, not a read-only connection: DuckDB refuses a reader while another process writes.
        with warehouse.writer() as con:
            subquery = f"(\n{test.statement}\n) AS _violations"
            try:
                count = con.execute(f"SELECT count(*) FROM {subquery}", bound).fetchall()[0][0]
                # A passing check (the usual case) does not run its query a second time: LIMIT 0 only plans it.
                shown = PREVIEW_ROWS if count else 0
                first = con.sql(f"SELECT * FROM {subquery} LIMIT {shown}", params=bound).pl()
            except duckdb.Error as e:
                raise SqlModelError(f"{test.path}: {e}") from e
        return dg.AssetCheckResult(
            passed=count == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "violations": count,
                "first_violations": preview(first, PREVIEW_ROWS),
                "sql_test": str(test.path),
            },
        )

    return sql_test
