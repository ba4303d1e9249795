"""MLCOST_SOURCES=focus (billing only, no MLflow), as a new user runs it: a folder of FOCUS files, a fresh warehouse.

Every asset materializes; the checks that read only MLflow-fed tables pass as not applicable and say why; every
other check runs; the marts hold exactly the files' EffectiveCost (summed from the files' bytes with csv + Decimal).
"""

import csv
import io
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.defs.core.ml_runs import MLFLOW_TABLES
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.sources.sample.focus_export import focus_csv
from mlcost_pipeline.sql_models import discover, fed_only_by

REPO = Path(__file__).resolve().parents[1]
D1, D3 = date(2026, 10, 1), date(2026, 10, 3)
MLFLOW_ONLY_CHECKS = {"cost_per_run__adds_up", "cost_per_run__every_run", "cost_per_run__no_negative_hours"}


def write_exports(folder: Path) -> dict[date, Decimal]:
    """One FOCUS file per day, as an exporter drops them; returns EffectiveCost per charge day, from the bytes."""
    folder.mkdir(parents=True)
    totals: dict[date, Decimal] = defaultdict(Decimal)
    day = D1
    while day <= D3:
        data = focus_csv(day)
        (folder / f"{day}.csv").write_bytes(data)
        for row in csv.DictReader(io.StringIO(data.decode())):
            totals[date.fromisoformat(row["ChargePeriodStart"][:10])] += Decimal(row["EffectiveCost"])
        day += timedelta(days=1)
    return dict(totals)


@pytest.fixture(scope="module")
def billing_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("billing_only")
    expected = write_exports(root / "exports")
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "w" / "mlcost.duckdb"), "MLCOST_SOURCES": "focus",
                              "MLCOST_FOCUS_PATH": str(root / "exports")})  # fmt: skip
    defs = build_definitions(settings)
    result = run_range(defs, D1, D3, dg.DagsterInstance.ephemeral())
    return defs, result, settings, expected


def test_billing_only_run_succeeds_and_materializes_every_asset(billing_only):
    defs, result, _, _ = billing_only
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    every = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == every


def test_checks_that_need_mlflow_pass_as_not_applicable_and_the_others_run(billing_only):
    defs, result, _, _ = billing_only
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {
        k.name for k in defs.resolve_asset_graph().asset_check_keys
    }  # every check ran
    not_applicable = {n: e.metadata["not_applicable"].value for n, e in evaluations.items()
                      if "not_applicable" in e.metadata}  # fmt: skip
    assert not_applicable == dict.fromkeys(MLFLOW_ONLY_CHECKS, "MLflow is not among MLCOST_SOURCES")
    assert all(evaluations[n].passed for n in MLFLOW_ONLY_CHECKS)
    # The KPI completeness check reads MLflow marts too, but it also checks the cost KPIs: it runs.
    assert "violations" in evaluations["kpi_daily__every_kpi"].metadata
    failed = [n for n, e in evaluations.items() if not e.passed and n != "budget_status__within_budget"]
    assert failed == []


def test_billing_only_marts_hold_the_files_effective_cost(billing_only):
    _, _, settings, expected = billing_only
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        mart = dict(
            con.execute(
                "SELECT charge_date, sum(amount) FROM marts.cost_per_project_daily GROUP BY ALL"
            ).fetchall()
        )
        runs = con.execute("SELECT count(*) FROM core.ml_runs").fetchall()[0][0]
    assert mart == expected
    assert runs == 0


def test_the_cli_summary_names_the_checks_that_did_not_apply(tmp_path):
    write_exports(tmp_path / "exports")
    env = {
        **os.environ,
        "MLCOST_SOURCES": "focus",
        "MLCOST_FOCUS_PATH": str(tmp_path / "exports"),
        "MLCOST_WAREHOUSE_PATH": str(tmp_path / "w" / "mlcost.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from mlcost_pipeline.cli import main; sys.exit(main())",
         "materialize", "--start", str(D1), "--end", str(D3)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for name in MLFLOW_ONLY_CHECKS:
        assert (
            f"  check  marts/cost_per_run:{name} not applicable: MLflow is not among MLCOST_SOURCES" in lines
        )
    assert lines[-1] == ("Checks not applicable (3): " + ", ".join(sorted(MLFLOW_ONLY_CHECKS))
                         + " (MLflow is not among MLCOST_SOURCES)")  # fmt: skip


def test_the_mlflow_tables_are_the_mlflow_assets_and_the_marts_built_only_from_them():
    graph = build_definitions(load_settings({})).resolve_asset_graph()
    mlflow_assets = {tuple(k.path) for k in graph.get_all_asset_keys() if "mlflow" in graph.get(k).kinds}
    assert MLFLOW_TABLES == mlflow_assets | {("core", "ml_run_costs")}  # a new MLflow asset must be listed
    models = discover(REPO / "dbt_like_sql")
    derived = fed_only_by(models, set(MLFLOW_TABLES)) - MLFLOW_TABLES
    assert derived == {("marts", t) for t in ("cost_per_run", "cost_per_experiment", "run_metrics",
                                               "model_version_runs", "kpi_run_daily", "kpi_model_daily")}  # fmt: skip
