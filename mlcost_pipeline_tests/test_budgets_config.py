"""The budgets file: the repo's own file loads; every mistake is one line naming the file and the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mlcost_pipeline.budgets.alerts import levels
from mlcost_pipeline.budgets.config import DEFAULT_BUDGETS_PATH, BudgetsError, load_budgets
from mlcost_pipeline.settings import load_settings

GOOD = """
currency: usd
thresholds: {warn: 75.5, error: 100}
budgets:
  - project: churn
    monthly: 1200.10
    months: {"2026-12": "900.000000000001"}
  - project: churn
    model: churn-lgbm
    id: churn-model
    monthly: 300
    thresholds: {warn: 50, error: 90}
"""


def test_repo_budgets_file_loads():
    loaded = load_budgets(DEFAULT_BUDGETS_PATH, "USD")
    assert loaded.file.currency == "USD" and len(loaded.file.budgets) >= 3


def test_rows_with_defaults_overrides_and_thresholds(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(GOOD)
    rows = [(r.budget_id, r.model, r.month, r.amount, r.currency, r.warn_pct, r.error_pct)
            for r in load_budgets(path, "USD").rows()]  # fmt: skip
    assert rows == [
        ("churn", None, None, Decimal("1200.10"), "USD", Decimal("75.5"), Decimal(100)),
        ("churn", None, date(2026, 12, 1), Decimal("900.000000000001"), "USD", Decimal("75.5"), Decimal(100)),
        ("churn-model", "churn-lgbm", None, Decimal(300), "USD", Decimal(50), Decimal(90)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: 10\n    colour: red\n",
         "budgets.0.colour: Extra inputs are not permitted"),
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: -5\n", "budgets.0.monthly: monthly must be a positive"),
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: ten\n", "budgets.0.monthly: monthly must be a number"),
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: 0.0000000000001\n",
         "budgets.0.monthly: monthly has more than 12 decimal places"),
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: 1\n    months: {'2026-13': 5}\n",
         "budgets.0.months.2026-13: month keys are 'YYYY-MM'"),
        ("currency: USD\nbudgets:\n  - project: a\n    monthly: 1\n  - project: a\n    monthly: 2\n",
         "budgets.1: a second budget for project 'a' (first: budgets.0)"),
        ("currency: USD\nbudgets:\n  - {project: a, monthly: 1, id: x}\n  - {project: b, monthly: 1, id: x}\n",
         "budgets.1.id: duplicate budget id 'x'"),
        ("currency: USD\nthresholds: {warn: 100, error: 80}\n", "thresholds.warn: warn (100) must be below error"),
        ("currency: USD\nbudgets:\n  - {monthly: 1}\n", "budgets.0.project: Field required"),
        ("budgets: []\n", "currency: Field required"),
        ("- a\n", "(top level): expected a mapping"),
        ("currency: [\n", "not valid YAML"),
        ("currency: EUR\n", "currency: budgets are in EUR but the reporting currency (MLCOST_REPORTING_CURRENCY) is USD"),
    ],
)  # fmt: skip
def test_bad_file_is_one_line_naming_file_and_field(tmp_path, text, expected):
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    with pytest.raises(BudgetsError) as exc:
        load_budgets(path, "USD")
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(BudgetsError, match="cannot read budgets file"):
        load_budgets(tmp_path / "nope.yaml")


def test_invalid_budgets_file_stops_the_code_location(tmp_path):
    from mlcost_pipeline.definitions import build_definitions

    bad = tmp_path / "budgets.yaml"
    bad.write_text("currency: USD\nbudgets:\n  - project: a\n    monthly: -1\n")
    settings = load_settings(
        {"MLCOST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "MLCOST_BUDGETS": str(bad)}
    )
    with pytest.raises(BudgetsError, match=r"budgets\.yaml: budgets\.0\.monthly"):
        build_definitions(settings)


def test_settings():
    assert load_settings({}).budget_alert_on == ("actual", "forecast")
    assert load_settings({"MLCOST_BUDGET_ALERT_ON": " Forecast "}).budget_alert_on == ("forecast",)
    with pytest.raises(ValueError, match="MLCOST_BUDGET_ALERT_ON: expected actual, forecast or both"):
        load_settings({"MLCOST_BUDGET_ALERT_ON": "sometimes"})
    assert load_settings({}).budget_webhook_url is None and load_settings({}).budgets_path is None


def test_thresholds_are_inclusive_and_exact():
    budget, warn, error = Decimal(1000), Decimal(80), Decimal(100)
    assert levels(Decimal("799.999999999999"), budget, warn, error) == []
    assert levels(Decimal("800"), budget, warn, error) == [("WARN", warn)]
    assert levels(Decimal("999.999999999999"), budget, warn, error) == [("WARN", warn)]
    assert levels(Decimal("1000"), budget, warn, error) == [("WARN", warn), ("ERROR", error)]
