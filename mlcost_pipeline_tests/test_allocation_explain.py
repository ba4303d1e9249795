"""`mlcost explain`: the charges, rules and ratios behind a project-day, as text and as JSON with exact money."""

import json
from decimal import Decimal

import pytest

from mlcost_pipeline.cli import main
from mlcost_pipeline_tests.allocation_fixtures import BASE_RULES, D1, allocate, charge, rules, warehouse

RULES = BASE_RULES + """
pools:
  - {id: nat, select: {services: [NAT]}, method: fixed, targets: [{project: a, weight: 25}, {project: b, weight: 75}]}
"""


@pytest.fixture
def warehouse_file(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    con = warehouse([
        charge(D1, "10", tags={"project": "a", "model": "m1"}),
        charge(D1, "4", BillingCurrency="EUR", x_CurrencyConversionRate=Decimal("0.8"), tags={"project": "a"}),
        charge(D1, "7", ServiceName="NAT"),
        charge(D1, "1", tags={"project": "b"}),
    ], path=path)  # fmt: skip
    allocate(con, rules(tmp_path, RULES))
    con.close()
    monkeypatch.setenv("MLCOST_WAREHOUSE_PATH", str(path))
    return path


def test_explain_json_total_is_the_sum_of_its_parts_in_reporting_currency(warehouse_file, capsys):
    assert main(["explain", "--project", "a", "--date", "2026-11-01", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"] == "16.750000000000"  # 10 + 4 EUR / 0.8 + 7 x 25%
    assert result["reporting_currency"] == "USD"
    assert result["total_by_billing_currency"] == {"EUR": "4.000000000000", "USD": "11.750000000000"}
    assert sum(Decimal(p["amount_reporting"]) for p in result["parts"]) == Decimal(result["total"])
    nat = next(p for p in result["parts"] if p["rule_id"] == "pool:nat")
    assert (nat["charge_amount"], nat["ratio"], nat["amount"], nat["method"]) == (
        "7.000000000000", "0.250000000000", "1.750000000000", "fixed")  # fmt: skip
    assert nat["details"]["x_Share"] == "target"
    eur = next(p for p in result["parts"] if p["billing_currency"] == "EUR")
    assert (eur["fx_source"], eur["fx_rate"], eur["amount_reporting"]) == ("provider", "1.250000000000", "5.000000000000")
    assert [r["rule_id"] for r in result["rules"]] == ["tag:project", "pool:nat"]


def test_explain_model_filter_and_text_output(warehouse_file, capsys):
    assert main(["explain", "--project", "a", "--date", "2026-11-01", "--model", "m1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == "10.000000000000"
    assert main(["explain", "--project", "a", "--date", "2026-11-01"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("a on 2026-11-01: 16.750000000000 USD (reporting currency)")
    assert "pool:nat" in text and "fixed" in text and "0.250000000000" in text


def test_explain_unknown_project_exits_1_naming_the_projects_of_that_day(warehouse_file, capsys):
    assert main(["explain", "--project", "nobody", "--date", "2026-11-01"]) == 1
    err = capsys.readouterr().err
    assert "no allocated cost for project 'nobody' on 2026-11-01; projects with cost that day: a, b" in err
