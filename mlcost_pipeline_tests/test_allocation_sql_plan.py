"""The allocation plan: rendered once per rules file and reporting currency; `mlcost sql` prints it."""

from decimal import Decimal

from mlcost_pipeline.allocation.plan import allocation_plan, cache_info
from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.allocation.run_costs import cost_runs_window
from mlcost_pipeline.cli import main
from mlcost_pipeline_tests.allocation_fixtures import (
    BASE_RULES,
    D1,
    D2,
    D3,
    allocate,
    at,
    charge,
    rules,
    run,
    shares,
    warehouse,
)

POOL = (
    BASE_RULES
    + """
pools:
  - {id: net, select: {providers: ["O'Brien Cloud"]}, method: even, targets: [a, b]}
"""
)


def test_plan_is_rendered_once_per_rules_text_and_reporting_currency(tmp_path):
    text = POOL + f"# {tmp_path.name}: a text no other test renders\n"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = rules(tmp_path / "one", text)
    again = rules(tmp_path / "two", text)  # the same text elsewhere: the same sha256, the same plan
    con = warehouse([charge(D1, "3", ProviderName="O'Brien Cloud"), charge(D2, "1", tags={"project": "c"})])
    before = cache_info()
    for loaded, (start, end) in ((first, (D1, D2)), (again, (D2, D3)), (first, (D1, D3))):
        allocate(con, loaded, start, end)
        cost_runs_window(con, loaded, start, end, "USD")
    after = cache_info()
    assert after["renders"] - before["renders"] == 1  # six windows, one rendering
    assert after["hits"] - before["hits"] == 5
    assert allocation_plan(first, "USD") is allocation_plan(again, "USD")
    assert allocation_plan(first, "EUR") is not allocation_plan(first, "USD")
    assert cache_info()["renders"] - after["renders"] == 1  # EUR is a plan of its own
    assert shares(con, "project") == {("a",): Decimal("1.5"), ("b",): Decimal("1.5"), ("c",): Decimal(1)}


def test_cli_sql_prints_every_statement_with_the_values_it_binds(tmp_path, capsys):
    path = tmp_path / "rules.yaml"
    path.write_text(POOL)
    assert main(["sql", "--rules", str(path), "--reporting-currency", "eur"]) == 0
    out = capsys.readouterr().out
    sha = load_rules(path).sha256
    assert f"-- rules sha256 {sha}; reporting currency EUR." in out
    headers = [line for line in out.splitlines() if line.startswith("-- [")]
    assert [h.split(":")[0] for h in headers] == [
        "-- [1] macros",
        "-- [2] stage 0",
        "-- [3] fx needs",
        "-- [4] stage 1",
        "-- [5] stage 2",
        "-- [6] cleanup",
        "-- [7] line view",
        "-- [8] run costs",
    ]
    assert "--        $pool0_providers = ['O''Brien Cloud']" in out  # a value as a SQL literal, quote doubled
    assert "--        $reporting = 'EUR'" in out and f"--        $rules_hash = '{sha}'" in out
    assert "INSERT INTO core.cost_cells BY NAME\nWITH run_resources AS (" in out
    assert "INSERT INTO core.allocated_cells BY NAME\nWITH direct AS (" in out
    assert "CREATE OR REPLACE VIEW core.allocated_costs AS" in out
    assert '--     {"pool_idx": 0, "pool_id": "net", "method": "even"' in out  # the pools frame, row by row


def test_cli_sql_defaults_to_mlcost_rules(tmp_path, capsys, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(BASE_RULES)
    monkeypatch.setenv("MLCOST_RULES", str(path))
    monkeypatch.setenv("MLCOST_REPORTING_CURRENCY", "chf")
    assert main(["sql"]) == 0
    assert f"-- rules sha256 {load_rules(path).sha256}; reporting currency CHF." in capsys.readouterr().out


def test_cli_sql_refuses_an_invalid_rules_file_or_currency_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE_RULES + "pools:\n  - {id: p, select: {services: [x]}, method: fixed, targets: [a]}\n")
    assert main(["sql", "--rules", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    expected = f"mlcost: invalid rules: {bad}: pools.0.targets.0.weight: method 'fixed' needs a weight per "
    expected += "target"
    assert captured.err == expected + "\n"
    good = tmp_path / "good.yaml"
    good.write_text(BASE_RULES)
    assert main(["sql", "--rules", str(good), "--reporting-currency", "XYZ"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == "mlcost: --reporting-currency: unknown currency code 'XYZ' (not an ISO 4217 code)\n"
    )


def test_sql_driver_model_column_is_optional_and_matched_in_any_case(tmp_path):
    text = (
        BASE_RULES
        + """
pools:
  - {id: logs, select: {services: [Logs]}, method: proportional_usage, driver: by_model, grain: model}
  - {id: nat, select: {services: [NAT]}, method: proportional_usage, driver: no_model, grain: model}
drivers:
  by_model:
    sql: SELECT x_RunDate AS day, project_tag AS project, model_tag AS MODEL, 1 AS quantity FROM core.ml_runs
  no_model:
    sql: SELECT x_RunDate AS day, project_tag AS Project, count(*) AS Quantity FROM core.ml_runs GROUP BY ALL
"""
    )
    con = warehouse([charge(D1, "4", ServiceName="Logs"), charge(D1, "4", ServiceName="NAT")],
                    [run("r1", at(D1, 1), 1, project="a", model="M_1"), run("r2", at(D1, 2), 1, project="b"),
                     run("r3", at(D1, 3), 1, project="b", model="m2")])  # fmt: skip
    allocate(con, rules(tmp_path, text))
    assert shares(con, "rule_id", "project", "model") == {
        ("pool:logs", "a", "m-1"): Decimal("1.333333333334"),  # a driver's model is normalized like a tag
        ("pool:logs", "b", None): Decimal("1.333333333333"),
        ("pool:logs", "b", "m2"): Decimal("1.333333333333"),
        ("pool:nat", "a", None): Decimal("1.333333333333"),  # no model column: NULL; a 1 run, b 2 runs
        ("pool:nat", "b", None): Decimal("2.666666666667"),
    }  # fmt: skip
