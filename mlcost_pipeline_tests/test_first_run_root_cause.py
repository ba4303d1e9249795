"""A failed run names its root cause (ours or the data's), not only Dagster's "Error occurred while executing op".

The in-process cases run real Dagster steps that fail inside our code; the last one runs `mlcost materialize` on
a FOCUS export with a NaN cost, as a user would.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.run_range import step_failures
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.sql_models import SqlModelError, discover

REPO = Path(__file__).resolve().parents[1]
BAD = Path(__file__).parent / "fixtures" / "bad"


def _failures(fn):
    result = dg.materialize([dg.asset(name="failing")(fn)], raise_on_error=False)
    assert not result.success
    return step_failures(result)


def test_our_error_is_named_with_its_message_and_the_step():
    (failure,) = _failures(lambda: discover(Path("/nonexistent/dbt_like_sql")))
    assert failure.line() == "failing: SqlModelError: /nonexistent/dbt_like_sql: no such dbt_like_sql folder"


def test_our_error_wrapping_a_duckdb_error_is_named_not_the_duckdb_error():
    def run_model():
        try:
            duckdb.sql("SELECT CAST('12,5' AS DECIMAL(38, 12))").fetchall()
        except duckdb.Error as e:
            raise SqlModelError(f"dbt_like_sql/marts/x.sql: {e}") from e

    (failure,) = _failures(run_model)
    assert failure.error_class == "SqlModelError"
    assert (
        failure.message.startswith("dbt_like_sql/marts/x.sql: Conversion Error:")
        and "12,5" in failure.message
    )


def test_a_duckdb_error_is_a_data_error():
    (failure,) = _failures(lambda: duckdb.sql("SELECT CAST('NaN' AS INTEGER)").fetchall())
    assert failure.error_class == "ConversionException" and "NaN" in failure.message


def test_a_builtin_error_raised_by_our_code_counts_as_ours():
    (failure,) = _failures(
        lambda: load_settings({"MLCOST_RESTATEMENT_DAYS": "3", "MLCOST_GCP_EXPORT_KIND": "csv"})
    )
    assert failure.line() == (
        "failing: ValueError: MLCOST_GCP_EXPORT_KIND: expected standard, detailed or auto, got 'csv'"
    )


def test_an_error_from_elsewhere_is_still_named_rather_than_dagsters_wrapper():
    (failure,) = _failures(lambda: {}["missing"])
    assert (failure.error_class, failure.message) == ("KeyError", "'missing'")


def test_materialize_prints_the_root_cause_of_a_bad_focus_file(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    bad = exports / "focus_nan_cost.csv"
    shutil.copy(BAD / "focus_nan_cost.csv", bad)
    env = {
        **os.environ,
        "MLCOST_SOURCES": "focus",
        "MLCOST_FOCUS_PATH": str(exports),
        "MLCOST_WAREHOUSE_PATH": str(tmp_path / "w" / "mlcost.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from mlcost_pipeline.cli import main; sys.exit(main())",
         "materialize", "--start", "2026-10-01", "--end", "2026-10-01"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("  FAILED ")]
    assert failed, done.stdout
    first = failed[0]
    assert ": SourceDataError: " in first or ": NormalizationError: " in first, first  # a data error, by name
    assert str(bad) in first and "row 2" in first and "BilledCost" in first and "NaN" in first, first
    assert "Error occurred while executing op" not in "\n".join(failed)
    last = done.stderr.strip().splitlines()[-1]
    assert last == "mlcost: the run failed: " + first.removeprefix("  FAILED "), last
