"""ML cost marts (dbt_like_sql/marts): cost per run and experiment, the workload category of each allocated piece
and the workload split of cost per model, on a hand-built warehouse whose answers were computed by hand."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.allocation.run_costs import create_table_sql as ml_run_costs_create_table_sql
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.cell_fixtures import insert_pieces
from mlcost_pipeline_tests.kpi_fixtures import kpi_defs

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)
D = Decimal

# run_id, experiment_id, experiment_name, status, start, end, duration_hours, gpu_count, gpu_hours, project_tag,
# model_tag, workload, metrics
RUNS = [
    ("R1", "E1", "churn-exp", "FINISHED", datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 13), "3", 2, "6",
     "churn", "churn-xgb", "training", '{"accuracy":0.9,"customer_retention_lift":0.05,"train_loss":0.2}'),
    ("R2", "E1", "churn-exp", "FAILED", datetime(2026, 11, 1, 0), datetime(2026, 11, 1, 1, 30), "1.5", 1, "1.5",
     "churn", None, "Batch-Inference", '{"accuracy":0.5}'),
    ("R3", "E2", "fraud-exp", "RUNNING", datetime(2026, 11, 1, 20), None, None, None, None,
     "fraud", None, None, "{}"),
    ("R4", "E2", "fraud-exp", "FINISHED", datetime(2026, 11, 2, 8), datetime(2026, 11, 2, 10), "2", None, None,
     "Fraud", None, "evaluation", None),
]  # fmt: skip

# charge_date, run_id, project, model, cost_source, is_estimate, amount_reporting
RUN_COSTS = [
    (D1, "R1", "churn", "churn-xgb", "direct", False, "10.000000000001"),
    (D1, "R1", "churn", "churn-xgb", "pool_share", False, "2.5"),
    (D2, "R1", "churn", "churn-xgb", "estimate", True, "1.25"),
    (D1, "R2", "churn", None, "pool_share", False, "0.333333333333"),
    (D1, "R3", "fraud", None, "estimate", True, None),  # no rate-card price: amount unknown
    (D2, "R3", "fraud", None, "estimate", True, "4"),
]

# x_LineId, amount, model, run_id, service_category, service_name -> the category and rule expected
PIECES = [
    ("L01", "10", "m1", "R1", "Compute", "Compute Engine", "training", "run_tag"),
    ("L02", "3", None, "R2", "AI and Machine Learning", "Vertex AI", "serving", "run_tag"),
    ("L03", "6", "m1", None, "Compute", "Compute Engine", "serving", "charge_tag"),  # charge tagged Serving
    ("L04", "1", None, "R3", "Compute", "Compute Engine", "training", "run"),  # run without a workload tag
    ("L05", "2", "m1", None, "Storage", "Cloud Storage", "storage", "service"),
    ("L06", "0.5", "m1", None, "Compute", "Amazon Elastic Container Service for Kubernetes", "orchestration",
     "service"),
    ("L07", "0.25", "m1", None, "Management and Governance", "AmazonCloudWatch", "monitoring", "service"),
    ("L08", "0.125", None, None, "Security", "AWS Key Management Service", "tooling", "service"),
    ("L09", "4", "m1", None, "Databases", "BigQuery", "data_pipeline", "service"),
    ("L10", "0.1", "m1", None, "Other", "Tax", "other", "default"),
    ("L11", "7", "m1", None, "AI and Machine Learning", "Vertex AI Online Prediction", "serving", "service"),
    ("L12", "5", "m1", None, "Compute", "Compute Engine", "other", "default"),  # untagged compute, no run
    ("L13", "0.000000000001", "m1", "R4", "Compute", "Compute Engine", "training", "run_tag"),  # evaluation
]  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> WarehouseResource:
    path = tmp_path_factory.mktemp("ml_cost_marts") / "w.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)  # the warehouse's own tables, as the pipeline creates them
    con.execute(ml_run_costs_create_table_sql("core.ml_run_costs"))
    con.executemany(
        "INSERT INTO core.ml_runs (run_id, experiment_id, experiment_name, status, start_time, end_time, "
        "duration_hours, gpu_count, gpu_hours, project_tag, model_tag, workload, metrics, x_RunDate) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DATE))",
        [[*r, r[4]] for r in RUNS],
    )
    con.executemany(
        "INSERT INTO core.ml_run_costs (charge_date, run_id, project, model, cost_source, is_estimate, "
        "amount_reporting, reporting_currency) VALUES (?, ?, ?, ?, ?, ?, ?, 'USD')",
        [list(r) for r in RUN_COSTS],
    )
    # The pieces as the allocation stores them (core.allocated_cells), each line its own cost cell; L03 and L12
    # carry tags (L03 a Serving workload tag).
    cids = insert_pieces(con, [
        {"x_LineId": line, "charge_date": D1, "billing_currency": "USD", "amount": amount, "reporting_currency": "USD",
         "amount_reporting": amount, "project": "p", "model": model, "run_id": run, "method": "tag", "provider": "X",
         "service_category": category, "service_name": name}
        for line, amount, model, run, category, name, *_ in PIECES
    ], cells={"L03": {"Tags": '{"workload": "Serving"}'}, "L12": {"Tags": '{"team": "ml"}'}})
    (path.parent / "cids.json").write_text(json.dumps(cids))
    con.close()
    resource = WarehouseResource(path=str(path))
    assets, checks, specs = kpi_defs()
    result = dg.materialize([*assets, *checks, *specs], resources={"warehouse": resource}, partition_key=D1.isoformat())
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    return resource


def _rows(warehouse: WarehouseResource, sql: str) -> list[tuple]:
    with warehouse.reader() as con:
        return con.execute(sql).fetchall()


def test_cost_per_run_splits_billed_pool_and_estimate_per_run(warehouse):
    rows = _rows(warehouse, """
        SELECT run_id, experiment_name, status, project, model, direct_amount, pool_share_amount, billed_amount,
               estimate_amount, is_estimate, unpriced_estimate_days, total_amount, reporting_currency, cost_days,
               duration_hours, gpu_hours, quality_metric, metrics
        FROM marts.cost_per_run ORDER BY run_id""")  # fmt: skip
    assert rows == [
        ("R1", "churn-exp", "FINISHED", "churn", "churn-xgb", D("10.000000000001"), D("2.5"), D("12.500000000001"),
         D("1.25"), True, 0, D("13.750000000001"), "USD", 2, D("3"), D("6"), 0.9,
         '{"accuracy":0.9,"customer_retention_lift":0.05}'),
        ("R2", "churn-exp", "FAILED", "churn", None, D("0"), D("0.333333333333"), D("0.333333333333"),
         D("0"), False, 0, D("0.333333333333"), "USD", 1, D("1.5"), D("1.5"), 0.5, '{"accuracy":0.5}'),
        # still running: estimated on two days, one of them without a price
        ("R3", "fraud-exp", "RUNNING", "fraud", None, D("0"), D("0"), D("0"), D("4"), True, 1, D("4"), "USD", 2,
         None, None, None, None),
        # no cost row at all: listed with zero cost and its raw project tag
        ("R4", "fraud-exp", "FINISHED", "Fraud", None, D("0"), D("0"), D("0"), D("0"), False, 0, D("0"), None, 0,
         D("2"), None, None, None),
    ]  # fmt: skip


def test_cost_per_experiment_sums_its_runs_and_failed_waste(warehouse):
    rows = _rows(warehouse, """
        SELECT experiment_id, experiment_name, projects, run_count, finished_runs, failed_runs, estimated_runs,
               duration_hours, gpu_hours, billed_amount, estimate_amount, total_amount, failed_amount,
               reporting_currency, first_run_start, last_run_end
        FROM marts.cost_per_experiment ORDER BY experiment_id""")  # fmt: skip
    assert rows == [
        ("E1", "churn-exp", "churn", 2, 1, 1, 1, D("4.5"), D("7.5"), D("12.833333333334"), D("1.25"),
         D("14.083333333334"), D("0.333333333333"), "USD", datetime(2026, 11, 1, 0), datetime(2026, 11, 1, 13)),
        ("E2", "fraud-exp", "Fraud,fraud", 2, 1, 0, 1, D("2"), D("0"), D("0"), D("4"), D("4"), D("0"), "USD",
         datetime(2026, 11, 1, 20), datetime(2026, 11, 2, 10)),
    ]  # fmt: skip


def test_each_allocated_piece_gets_one_workload_category(warehouse):
    lines = {cid: line for line, cid in json.loads((Path(warehouse.path).parent / "cids.json").read_text()).items()}
    rows = _rows(warehouse, """
        SELECT cid, workload_category, workload_source
        FROM marts.allocated_costs_by_workload ORDER BY cid""")  # fmt: skip
    assert [(lines[cid], category, source) for cid, category, source in rows] == [
        (line, category, source) for line, *_, category, source in PIECES
    ]


def test_cost_per_model_daily_splits_by_workload_and_keeps_its_columns(warehouse):
    rows = _rows(warehouse, """
        SELECT charge_date, model, project, billing_currency, amount, line_count, reporting_currency,
               amount_reporting, training_amount, serving_amount, storage_amount, data_pipeline_amount, other_amount
        FROM marts.cost_per_model_daily ORDER BY ALL""")  # fmt: skip
    # m1: training 10 + 0.000000000001 (L01, L13); serving 6 + 7; storage 2; data pipeline 4;
    # other: orchestration 0.5 + monitoring 0.25 + tax 0.1 + untagged compute 5.
    assert rows == [
        (D1, "m1", "p", "USD", D("34.850000000001"), 10, "USD", D("34.850000000001"), D("10.000000000001"),
         D("13"), D("2"), D("4"), D("5.85")),
    ]  # fmt: skip


def test_every_run_check_fails_on_a_run_the_mart_has_not_seen(warehouse, tmp_path):
    copy = tmp_path / "w.duckdb"
    copy.write_bytes(Path(warehouse.path).read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("INSERT INTO core.ml_runs (run_id, start_time, x_RunDate) VALUES ('R5', $t, $d)",
                    {"t": datetime(2026, 11, 2), "d": D2})  # fmt: skip
    assets, checks, specs = kpi_defs()
    key = dg.AssetCheckKey(dg.AssetKey(["marts", "cost_per_run"]), "cost_per_run__every_run")
    result = dg.materialize(
        [*assets, *checks, *specs],
        resources={"warehouse": WarehouseResource(path=str(copy))},
        selection=dg.AssetSelection.checks(key),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["violations"].value == 1
    assert "R5" in evaluation.metadata["first_violations"].value
