"""Real FOCUS files break the spec in columns that decide no money: such rows load and are counted; rows whose
money, currency, charge period or identity is broken refuse the file (docs/exports.md).

The fixture reproduces the published FOCUS 1.0 sample's quirks (fixtures/focus-1.0-sample-quirks/README.md).
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.normalize.focus_export import read_focus_export, summarize_file
from mlcost_pipeline.normalize.focus_export_sql import strict_columns
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline_tests.connector_helpers import live_settings

QUIRKS = Path(__file__).parent / "fixtures" / "focus-1.0-sample-quirks" / "focus_sample_quirks.csv"
START, END = date(2026, 9, 1), date(2026, 9, 4)


def _file_totals(path: Path) -> dict[tuple[date, str], tuple[Decimal, Decimal]]:
    """(day, provider) -> (BilledCost, EffectiveCost), from the file's bytes."""
    totals: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            t = totals[(date.fromisoformat(r["ChargePeriodStart"][:10]), r["ProviderName"])]
            t[0] += Decimal(r["BilledCost"])
            t[1] += Decimal(r["EffectiveCost"])
    return {k: (v[0], v[1]) for k, v in totals.items()}


def _rows_where(path: Path, column: str, values: tuple[str, ...]) -> int:
    with path.open(newline="") as f:
        return sum(1 for r in csv.DictReader(f) if r[column] in values)


def test_the_quirky_sample_loads_whole_and_counts_each_problem_by_provider_and_column():
    with duckdb.connect() as con:
        df = read_focus_export(con, [str(QUIRKS)], START, END, datetime(2026, 9, 5))
        summary = summarize_file(con, str(QUIRKS), START, END)
    got = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in df.iter_rows(named=True):
        got[(r["x_ChargeDate"], r["ProviderName"])][0] += r["BilledCost"]
        got[(r["x_ChargeDate"], r["ProviderName"])][1] += r["EffectiveCost"]
    assert {k: tuple(v) for k, v in got.items()} == _file_totals(QUIRKS)
    counted = defaultdict(int)
    for q in summary.quality:
        counted[(q.provider, q.column)] += q.rows
    assert counted == {("Oracle", "ContractedCost"): _rows_where(QUIRKS, "ContractedCost", ("NULL",)),
                       ("AWS", "InvoiceIssuerName"): 1, ("AWS", "PricingQuantity"): 1}
    # A mandatory column left empty takes its documented fallback; an unparseable quantity is null.
    oracle = df.filter(df["ProviderName"] == "Oracle")
    assert (oracle["ContractedCost"] == oracle["ListCost"]).all()
    assert df["InvoiceIssuerName"].null_count() == 0 and df["PricingQuantity"].null_count() == 1


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("BilledCost", "NULL", "BilledCost: mandatory value is empty"),
    ("EffectiveCost", "1,5", 'EffectiveCost: cannot parse "1,5"'),
    ("BillingCurrency", "", "BillingCurrency: mandatory value is empty"),
    ("ChargePeriodStart", "yesterday", 'ChargePeriodStart: cannot parse "yesterday"'),
    ("BillingAccountId", "NULL", "BillingAccountId: mandatory value is empty"),
])  # fmt: skip
def test_a_problem_where_money_is_decided_still_refuses_the_file_naming_row_and_column(tmp_path, column, value, reason):
    with QUIRKS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[4][column] = value
    path = tmp_path / "broken.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    with duckdb.connect() as con, pytest.raises(NormalizationError) as err:
        read_focus_export(con, [str(path)], START, END, datetime(2026, 9, 5))
    assert f"file {path}: row 5: {reason}" in str(err.value)


def test_the_rules_cost_basis_is_held_as_strictly_as_the_billed_cost(tmp_path):
    with duckdb.connect() as con:
        assert {q.column for q in summarize_file(con, str(QUIRKS), START, END).quality} >= {"ContractedCost"}
        with pytest.raises(NormalizationError, match=r"row 9: ContractedCost: mandatory value is empty"):
            summarize_file(con, str(QUIRKS), START, END, strict=strict_columns("ContractedCost"))


def test_sources_focus_alone_materializes_the_quirky_sample_with_its_totals(tmp_path):
    (tmp_path / "exports").mkdir()
    shutil.copy(QUIRKS, tmp_path / "exports" / "focus_sample.csv")
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=str(tmp_path / "exports"))
    result = run_range(build_definitions(settings), START, date(2026, 9, 3), dg.DagsterInstance.ephemeral())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT x_ChargeDate, ProviderName, sum(BilledCost), sum(EffectiveCost) "
                           "FROM core.focus_costs GROUP BY ALL").fetchall()  # fmt: skip
    assert {(d, p): (b, e) for d, p, b, e in rows} == _file_totals(QUIRKS)
    [quality] = [e for e in result.get_asset_check_evaluations() if e.check_name == "focus_costs__data_quality"]
    assert not quality.passed and quality.severity == dg.AssetCheckSeverity.WARN
    by_column = quality.metadata["by_provider_and_column"].value
    assert by_column["Oracle / ContractedCost"]["rows"] == _rows_where(QUIRKS, "ContractedCost", ("NULL",))
    assert "focus_sample.csv: row " in by_column["AWS / PricingQuantity"]["example"]
    others = [e for e in result.get_asset_check_evaluations() if e.check_name != "focus_costs__data_quality"]
    assert all(e.passed for e in others), [e.check_name for e in others if not e.passed]


def test_microsofts_known_focuscost_errors_load_as_they_are_and_are_counted(tmp_path):
    """finops-toolkit #1092 (a savings-plan purchase with a non-zero EffectiveCost) and #834 (unused savings plan
    with EffectiveCost 0): the rows load with their amounts, and the check counts them under EffectiveCost."""
    with QUIRKS.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["ProviderName"] == "Microsoft"]
    purchase, unused = dict(rows[0]), dict(rows[1])
    purchase.update(ChargeCategory="Purchase", CommitmentDiscountId="/providers/microsoft.billingbenefits/"
                    "savingsplanorders/sp-1", CommitmentDiscountType="Savings Plan", EffectiveCost="4.20")
    unused.update(CommitmentDiscountId="/providers/microsoft.billingbenefits/savingsplanorders/sp-1",
                  CommitmentDiscountStatus="Unused", EffectiveCost="0", BilledCost="0")  # fmt: skip
    path = tmp_path / "focuscost.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows([purchase, unused, *rows[2:4]])
    with duckdb.connect() as con:
        df = read_focus_export(con, [str(path)], START, END, datetime(2026, 9, 5))
        summary = summarize_file(con, str(path), START, END)
    assert df["EffectiveCost"].sum() == sum(Decimal(r["EffectiveCost"]) for r in (purchase, unused, *rows[2:4]))
    assert [(q.column, q.rows, q.example_row) for q in summary.quality] == [("EffectiveCost", 2, 1)]
    assert "commitment purchase with EffectiveCost <> 0" in summary.quality[0].example
