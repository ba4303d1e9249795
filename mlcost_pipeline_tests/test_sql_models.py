"""dbt_like_sql: discovery and dependency analysis (pure), then the marts materialized through Dagster."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.allocation.run_costs import create_table_sql as ml_run_costs_create_table_sql
from mlcost_pipeline.defs.transform.sql_models import build_sql_model_defs
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.sql_models import SqlModelError, build_order, discover, discover_tests
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.cell_fixtures import insert_pieces
from mlcost_pipeline_tests.kpi_fixtures import external_tables, kpi_defs

ROOT = Path(__file__).resolve().parents[1] / "dbt_like_sql"
ALLOCATED = ("core", "allocated_costs")
PIECES = ("core", "allocated_cells")  # what the marts read (core.allocated_costs is their per-line view)
PROJECT_DAILY = ("marts", "cost_per_project_daily")
MODEL_DAILY = ("marts", "cost_per_model_daily")
BY_WORKLOAD = ("marts", "allocated_costs_by_workload")
# The Python-asset tables the real dbt_like_sql folder reads.
EXTERNAL = external_tables()
D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- discovery and dependencies -------------------------------------------------------------------------------


def test_discover_real_folder_finds_the_marts_and_their_inputs():
    models = {m.key: m for m in discover(ROOT)}
    assert {PROJECT_DAILY, MODEL_DAILY} <= set(models)
    assert models[PROJECT_DAILY].deps == {BY_WORKLOAD}
    assert models[MODEL_DAILY].deps == {BY_WORKLOAD}
    assert models[PROJECT_DAILY].partitioned_by == "charge_date"
    assert models[PROJECT_DAILY].description.startswith("Cost per project per day")
    assert "partitioned_by" not in models[PROJECT_DAILY].description
    assert "$start_date" in models[PROJECT_DAILY].sql  # executed as written, never re-rendered
    order = [m.key for m in build_order(models.values(), EXTERNAL)]
    assert order.index(BY_WORKLOAD) < order.index(MODEL_DAILY)


def test_discover_tests_attaches_adds_up_to_the_project_mart():
    tests = {t.name: t for t in discover_tests(ROOT)}
    adds_up = tests["cost_per_project_daily__adds_up"]
    assert adds_up.model == PROJECT_DAILY
    assert adds_up.refs == {PROJECT_DAILY, PIECES}


def test_discover_code_version_changes_with_the_sql(tmp_path):
    copy = tmp_path / "sql"
    shutil.copytree(ROOT, copy)
    before = {m.key: m.code_version for m in discover(copy)}
    path = copy / "marts" / "cost_per_model_daily.sql"
    path.write_text(path.read_text() + "\n-- a trailing comment is still a change\n")
    after = {m.key: m.code_version for m in discover(copy)}
    assert after[MODEL_DAILY] != before[MODEL_DAILY]
    assert after[PROJECT_DAILY] == before[PROJECT_DAILY]
    assert len(after[MODEL_DAILY]) == 12


def test_discover_ignores_underscore_files_and_the_tests_folder(tmp_path):
    root = _write(tmp_path, {
        "marts/a.sql": "SELECT 1 AS x FROM core.t",
        "marts/_draft.sql": "SELECT nonsense FROM",
        "tests/a__positive.sql": "SELECT * FROM marts.a WHERE x < 0",
    })  # fmt: skip
    assert [m.key for m in discover(root)] == [("marts", "a")]
    (test,) = discover_tests(root)
    assert (test.name, test.model) == ("a__positive", ("marts", "a"))


def test_discover_rejects_a_missing_folder(tmp_path):
    with pytest.raises(SqlModelError, match="no such dbt_like_sql folder"):
        discover(tmp_path / "dbt_like_sqll")


def test_build_order_rejects_an_unknown_table(tmp_path):
    root = _write(tmp_path, {"marts/a.sql": "SELECT * FROM core.nope"})
    with pytest.raises(SqlModelError, match=r"a\.sql.*core\.nope"):
        build_order(discover(root), {ALLOCATED})


def test_build_order_rejects_a_cycle_naming_its_tables(tmp_path):
    root = _write(tmp_path, {
        "marts/a.sql": "SELECT * FROM marts.b",
        "marts/b.sql": "SELECT * FROM marts.a",
        "marts/c.sql": "SELECT * FROM core.allocated_costs",
    })  # fmt: skip
    with pytest.raises(SqlModelError, match="cycle") as err:
        build_order(discover(root), {ALLOCATED})
    assert "marts.a" in str(err.value) and "marts.b" in str(err.value) and "marts.c" not in str(err.value)


def test_build_order_puts_dependencies_first(tmp_path):
    root = _write(tmp_path, {
        "marts/a.sql": "SELECT * FROM staging.b JOIN staging.c USING (x)",
        "staging/b.sql": "SELECT * FROM staging.c",
        "staging/c.sql": "SELECT * FROM core.allocated_costs",
    })  # fmt: skip
    order = [m.table for m in build_order(discover(root), {ALLOCATED})]
    assert order == ["c", "b", "a"]


def test_discover_ctes_and_table_functions_are_not_deps(tmp_path):
    root = _write(tmp_path, {"marts/a.sql": """
        WITH recent AS (SELECT * FROM core.allocated_costs), runs AS (SELECT * FROM recent)
        SELECT * FROM runs
        JOIN read_parquet('x.parquet') AS p USING (run_id)
        WHERE project IN (SELECT project FROM recent UNION SELECT name FROM raw.projects)
    """})  # fmt: skip
    (model,) = discover(root)
    assert model.deps == {ALLOCATED, ("raw", "projects")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1 FROM core.t; SELECT 2 FROM core.t", "exactly one SELECT"),
        ("CREATE TABLE marts.a AS SELECT 1", "exactly one SELECT"),
        ("-- only a comment\n", "exactly one SELECT"),
        ("SELECT * FROM allocated_costs", "schema.table"),
        ("-- partitioned_by: d\nSELECT * FROM core.t", r"parameters \['\$end_date', '\$start_date'\]"),
        ("SELECT * FROM core.t WHERE d >= $start_date", "full-rebuild"),
        ("SELECT * FROM core.t WHERE", "not valid"),
    ],
)
def test_discover_rejects_a_bad_file_naming_it(tmp_path, text, message):
    root = _write(tmp_path, {"marts/bad_model.sql": text})
    with pytest.raises(SqlModelError, match=message) as err:
        discover(root)
    assert "bad_model.sql" in str(err.value)


def test_config_parameters_are_bound_and_fold_into_the_code_version(tmp_path, warehouse):
    root = _write(tmp_path / "sql", {
        "marts/picked.sql": "SELECT m AS metric, m = $quality_metric AS is_quality FROM unnest($kpi_metrics) AS t(m)",
        "tests/picked__quality_once.sql": "SELECT count(*) FROM marts.picked WHERE is_quality "
                                          "HAVING count(*) <> CASE WHEN $quality_metric IS NULL THEN 0 ELSE 1 END",
    })  # fmt: skip
    (model,) = discover(root)
    assert model.config_params == {"kpi_metrics", "quality_metric"} and model.deps == frozenset()
    config = {"kpi_metrics": ["auc", "f1"], "quality_metric": "f1"}
    assets, checks = build_sql_model_defs(root, set(), config)
    result = _materialize((assets, checks), warehouse)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert _rows(warehouse, "SELECT * FROM marts.picked ORDER BY 1") == [("auc", False), ("f1", True)]
    key = dg.AssetKey(["marts", "picked"])
    other, _ = build_sql_model_defs(root, set(), {**config, "quality_metric": "auc"})
    assert assets[0].code_versions_by_key[key] != other[0].code_versions_by_key[key]
    with pytest.raises(SqlModelError, match=r"unknown SQL configuration parameter\(s\) \['metrics'\]"):
        build_sql_model_defs(root, set(), {"metrics": []})
    with pytest.raises(SqlModelError, match=r"picked.sql: reads \$kpi_metrics, which no setting provides"):
        build_sql_model_defs(root, set(), {"quality_metric": "f1"})


def test_a_test_may_read_configuration_but_not_a_window(tmp_path):
    root = _write(tmp_path, {
        "marts/a.sql": "SELECT 1 AS x FROM core.t",
        "tests/windowed.sql": "SELECT * FROM marts.a WHERE $start_date IS NULL",
    })  # fmt: skip
    with pytest.raises(SqlModelError, match=r"windowed.sql: a test takes no window parameters"):
        discover_tests(root)


def test_discover_accepts_a_trailing_semicolon_and_comment(tmp_path):
    root = _write(tmp_path, {"marts/a.sql": "SELECT 1 AS x FROM core.t; -- done\n"})
    (model,) = discover(root)
    assert model.statement == "SELECT 1 AS x FROM core.t"


def test_discover_tests_needs_a_header_when_two_models_are_read(tmp_path):
    root = _write(tmp_path, {
        "marts/a.sql": "SELECT 1 AS x FROM core.t",
        "marts/b.sql": "SELECT 1 AS x FROM core.t",
        "tests/same.sql": "SELECT * FROM marts.a JOIN marts.b USING (x)",
    })  # fmt: skip
    with pytest.raises(SqlModelError, match="-- asset:"):
        discover_tests(root)


# --- Dagster: the marts materialized from a hand-written core.allocated_cells -----------------------------------

ROWS = [
    ("L1", 0, D1, "USD", "10.000000000001", "churn", "churn-xgb", "tag", "AWS"),
    ("L2", 0, D1, "USD", "2.5", "churn", None, "tag", "AWS"),
    ("L3", 0, D1, "USD", "0.333333333333", "churn", None, "even", "GCP"),
    ("L3", 1, D1, "USD", "0.333333333334", "fraud", "fraud-gbm", "even", "GCP"),
    ("L4", 0, D1, "EUR", "7", "__unallocated__", None, "unallocated", "Azure"),
    ("L5", 0, D2, "USD", "100", "churn", "churn-xgb", "tag", "AWS"),
]


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)  # the warehouse's own tables, as the pipeline creates them
    con.execute(ml_run_costs_create_table_sql("core.ml_run_costs"))
    insert_pieces(con, [  # amount_reporting: 1:1, these tests are about billing-currency amounts
        {"x_LineId": line, "piece": piece, "charge_date": day, "billing_currency": cur, "amount": amount,
         "project": project, "model": model, "method": method, "provider": provider, "reporting_currency": "USD",
         "amount_reporting": amount}
        for line, piece, day, cur, amount, project, model, method, provider in ROWS
    ])
    con.close()
    return WarehouseResource(path=str(path))


@pytest.fixture(scope="module")
def sql_defs():
    assets, checks, _ = kpi_defs()  # the budget models have inputs of their own
    return assets, checks


def _materialize(sql_defs, warehouse, partition_key=None, selection=None, raise_on_error=True, tags=None):
    assets, checks = sql_defs
    return dg.materialize(
        [*assets, *checks, *(dg.AssetSpec(dg.AssetKey(list(k))) for k in sorted(EXTERNAL))],
        resources={"warehouse": warehouse},
        partition_key=partition_key,
        selection=selection,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def _rows(warehouse: WarehouseResource, sql: str) -> list[tuple]:
    with warehouse.reader() as con:
        return con.execute(sql).fetchall()


def test_build_sql_model_defs_describes_each_mart(sql_defs):
    assets, checks = sql_defs
    by_key = {a.key: a for a in assets}
    spec = by_key[dg.AssetKey(list(PROJECT_DAILY))].specs_by_key[dg.AssetKey(list(PROJECT_DAILY))]
    assert {d.asset_key for d in spec.deps} == {dg.AssetKey(list(BY_WORKLOAD))}
    assert spec.group_name == "marts" and spec.kinds == {"duckdb", "sql"}
    assert spec.metadata["dagster/table_name"] == "marts.cost_per_project_daily"
    assert spec.partitions_def is not None and len(spec.code_version) == 12
    names = {k.name for c in checks for k in c.check_keys}
    assert "cost_per_project_daily__adds_up" in names
    assert all(s.blocking for c in checks for s in c.check_specs)


def test_marts_materialize_hand_computed_rows_and_totals(sql_defs, warehouse):
    result = _materialize(sql_defs, warehouse, partition_key="2026-11-01")
    assert result.success
    project_rows = _rows(warehouse, """
        SELECT charge_date, project, provider, billing_currency, amount, tagged_amount, line_count
        FROM marts.cost_per_project_daily ORDER BY ALL""")  # fmt: skip
    assert project_rows == [
        (D1, "__unallocated__", "Azure", "EUR", Decimal("7"), Decimal("0"), 1),
        (D1, "churn", "AWS", "USD", Decimal("12.500000000001"), Decimal("12.500000000001"), 2),
        (D1, "churn", "GCP", "USD", Decimal("0.333333333333"), Decimal("0"), 1),
        (D1, "fraud", "GCP", "USD", Decimal("0.333333333334"), Decimal("0"), 1),
    ]
    model_rows = _rows(warehouse, "SELECT charge_date, model, project, billing_currency, amount, line_count "
                                  "FROM marts.cost_per_model_daily ORDER BY ALL")
    assert model_rows == [
        (D1, "churn-xgb", "churn", "USD", Decimal("10.000000000001"), 1),
        (D1, "fraud-gbm", "fraud", "USD", Decimal("0.333333333334"), 1),
    ]
    meta = result.asset_materializations_for_node("marts__cost_per_project_daily")[0].metadata
    assert meta["dagster/row_count"].value == 4
    assert meta["total_amount"].value == "7.000000000000 EUR; 13.166666666668 USD"
    assert "total_amount_float" not in meta  # two currencies: no meaningful single number
    assert [c.name for c in meta["dagster/column_schema"].schema.columns][:2] == ["charge_date", "project"]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["cost_per_project_daily__adds_up"].passed
    assert evaluations["cost_per_model_daily__adds_up"].passed


def test_marts_rerun_of_a_partition_gives_the_same_rows(sql_defs, warehouse):
    _materialize(sql_defs, warehouse, partition_key="2026-11-01")
    first = _rows(warehouse, "SELECT * FROM marts.cost_per_project_daily ORDER BY ALL")
    # A ranged single-run backfill over both days, then the first day alone again.
    _materialize(sql_defs, warehouse, tags={
        "dagster/asset_partition_range_start": "2026-11-01",
        "dagster/asset_partition_range_end": "2026-11-02",
    })  # fmt: skip
    _materialize(sql_defs, warehouse, partition_key="2026-11-01")
    again = _rows(warehouse, "SELECT * FROM marts.cost_per_project_daily ORDER BY ALL")
    assert [r for r in again if r[0] == D1] == first
    assert [(r[1], r[4]) for r in again if r[0] == D2] == [("churn", Decimal("100"))]


def test_adds_up_check_fails_with_error_on_a_tampered_mart(sql_defs, warehouse):
    _materialize(sql_defs, warehouse, partition_key="2026-11-01")
    with duckdb.connect(warehouse.path) as con:
        con.execute(
            "UPDATE marts.cost_per_project_daily SET amount = amount + 0.000000000001 WHERE project = 'fraud'"
        )
    adds_up = dg.AssetCheckKey(dg.AssetKey(list(PROJECT_DAILY)), "cost_per_project_daily__adds_up")
    selection = dg.AssetSelection.checks(adds_up)
    result = _materialize(sql_defs, warehouse, selection=selection, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["violations"].value == 1
    assert "13.166666666669" in evaluation.metadata["first_violations"].value


def test_partitioned_model_refuses_rows_outside_its_window(tmp_path, warehouse):
    root = _write(tmp_path / "sql", {
        "marts/leaky.sql": "-- partitioned_by: charge_date\n"
        "SELECT charge_date, amount FROM core.allocated_cells WHERE $start_date <= $end_date",
    })  # fmt: skip
    assets, _ = build_sql_model_defs(root, {PIECES})
    with pytest.raises(SqlModelError, match="outside the partition window"):
        _materialize((assets, []), warehouse, partition_key="2026-11-01")
    assert _rows(warehouse, "SELECT count(*) FROM marts.leaky") == [(0,)]


def test_full_rebuild_model_replaces_its_table(tmp_path, warehouse):
    root = _write(tmp_path / "sql", {
        "marts/spend_by_project.sql": "-- All-time spend per project.\n"
        "SELECT project, billing_currency, sum(amount) AS amount FROM core.allocated_cells GROUP BY ALL",
    })  # fmt: skip
    assets, _ = build_sql_model_defs(root, {PIECES})
    _materialize((assets, []), warehouse)
    result = _materialize((assets, []), warehouse)
    meta = result.asset_materializations_for_node("marts__spend_by_project")[0].metadata
    assert meta["dagster/row_count"].value == 3
    assert meta["total_amount"].value == "7.000000000000 EUR; 113.166666666668 USD"
    assert _rows(warehouse, "SELECT amount FROM marts.spend_by_project WHERE project = 'churn'") == [
        (Decimal("112.833333333334"),)
    ]


def _model_daily_assets():
    assets, _ = build_sql_model_defs(ROOT, EXTERNAL)
    wanted = {dg.AssetKey(list(MODEL_DAILY)), dg.AssetKey(list(BY_WORKLOAD))}
    return [a for a in assets if a.key in wanted]


def test_partitioned_model_with_changed_columns_is_rebuilt_from_its_inputs(tmp_path, warehouse):
    # An upgrade that changes a mart's columns: every day the table holds is recomputed from core.allocated_cells
    # with the new columns (a stale row and a dropped column go), not only the run's window.
    with duckdb.connect(warehouse.path) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(
            "CREATE TABLE marts.cost_per_model_daily "
            "(charge_date DATE, model VARCHAR, amount DOUBLE, obsolete VARCHAR)"
        )
        con.execute("INSERT INTO marts.cost_per_model_daily VALUES ('2026-11-02', 'stale-model', 5, 'x')")
    # Its input mart already holds 2026-11-02, as it would on a warehouse built before the upgrade.
    assets = _model_daily_assets()
    _materialize((assets, []), warehouse, "2026-11-02", selection=[dg.AssetKey(list(BY_WORKLOAD))])
    _materialize((assets, []), warehouse, partition_key="2026-11-01")
    columns = [r[0] for r in _rows(warehouse, "DESCRIBE marts.cost_per_model_daily")]
    assert "obsolete" not in columns and {"training_amount", "serving_amount", "billing_currency"} <= set(columns)
    got = _rows(
        warehouse,
        "SELECT charge_date, model, amount FROM marts.cost_per_model_daily "
        "WHERE billing_currency = 'USD' ORDER BY ALL",
    )
    assert got == [
        (D1, "churn-xgb", Decimal("10.000000000001")),
        (D1, "fraud-gbm", Decimal("0.333333333334")),
        (D2, "churn-xgb", Decimal("100.000000000000")),
    ]
