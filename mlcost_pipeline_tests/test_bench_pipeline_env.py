"""The bench's pipeline run gets a user's default settings, and reports the memory limit DuckDB really applies."""

import duckdb

from bench.pipeline_run import MEMORY_LIMIT_ENV, child_env, effective_memory_limit


def test_the_default_run_carries_no_setting_of_the_callers_shell(monkeypatch, tmp_path):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GB")
    monkeypatch.setenv("MLCOST_RULES", "/somewhere/else.yaml")
    monkeypatch.setenv("DAGSTER_HOME", "/somewhere/dagster")
    env = child_env(tmp_path / "work", tmp_path / "exports", None)
    assert MEMORY_LIMIT_ENV not in env and "MLCOST_RULES" not in env and "DAGSTER_HOME" not in env
    assert env["MLCOST_FOCUS_PATH"] == str(tmp_path / "exports")
    assert env["MLCOST_WAREHOUSE_PATH"] == str(tmp_path / "work" / "mlcost.duckdb")
    assert child_env(tmp_path / "work", tmp_path / "exports", "1.5GB")[MEMORY_LIMIT_ENV] == "1.5GB"


def test_the_reported_limit_is_the_one_duckdb_applies_to_the_warehouse_writer(tmp_path):
    con = duckdb.connect(config={"memory_limit": "1.5GB"})
    try:
        expected = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    assert effective_memory_limit(child_env(tmp_path, tmp_path, "1.5GB")) == expected
