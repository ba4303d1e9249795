"""The FOCUS 1.2 commitment-discount examples (fixtures/focus-spec-v1.2-examples) through the real reader and the
allocation: cost is allocated on EffectiveCost, so a commitment purchase (EffectiveCost 0) is not counted a second
time next to the amortized usage it pays for, and unused commitment stays visible."""

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.allocation.engine import allocate_window
from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.allocation_fixtures import BASE_RULES, rules
from mlcost_pipeline_tests.warehouse_fixtures import insert_charges

SPEC = Path(__file__).parent / "fixtures" / "focus-spec-v1.2-examples"
DEFAULTS = {"BillingCurrency": "USD", "BillingAccountId": "spec-example", "ProviderName": "FOCUS spec",
            "ServiceName": "Example Service"}  # fmt: skip
START, END = date(2023, 1, 1), date(2023, 2, 1)
BROKEN = {"commitment_discount_purchase_scenario_2.csv", "commitment_discount_purchase_scenario_3.csv"}  # hour 30
FILES = sorted(p.name for p in SPEC.glob("*.csv") if p.name not in BROKEN)
RULES = BASE_RULES + """
fallbacks:
  resource_ids:
    - {pattern: '^<my-(resource|large-vm|medium-vm)-id>$', assign: vm-team}
"""


def _allocated(tmp_path, name: str, text: str = RULES):
    con = duckdb.connect()
    ensure_schema(con)
    frame = read_focus_export(con, [str(SPEC / name)], START, END, datetime(2026, 11, 1), defaults=DEFAULTS)
    insert_charges(con, frame)
    loaded = rules(tmp_path, text)
    allocate_window(con, loaded, START, END, "USD")
    return con, loaded


def _one(con, sql):
    return con.execute(sql).fetchall()[0]


@pytest.mark.parametrize("name", FILES)
def test_focus_example_allocates_effective_cost_exactly(tmp_path, name):
    con, _ = _allocated(tmp_path, name)
    effective, billed, purchases = _one(con, "SELECT sum(EffectiveCost), sum(BilledCost), "
                                             "sum(EffectiveCost) FILTER (ChargeCategory = 'Purchase') "
                                             "FROM core.focus_costs")  # fmt: skip
    (allocated,) = _one(con, "SELECT sum(amount) FROM core.allocated_costs")
    assert allocated == effective
    assert purchases in (None, Decimal(0))  # FOCUS: a purchase covering future charges has EffectiveCost 0
    assert conservation_violations(con, START, END) == [] and split_violations(con, START, END) == (0, [])
    (used,) = _one(con, "SELECT sum(EffectiveCost) FROM core.focus_costs WHERE ChargeCategory = 'Usage' "
                        "AND ResourceId <> '<my-commitment-discount-id>'")  # fmt: skip
    assert _one(con, "SELECT sum(amount) FROM core.allocated_costs WHERE project = 'vm-team'") == (used,)
    assert billed is not None


@pytest.mark.parametrize("name", [n for n in FILES if n.startswith(("one_hundred", "zero_percent"))])
def test_focus_example_purchase_is_not_counted_twice(tmp_path, name):
    con, _ = _allocated(tmp_path, name)
    (purchase_billed,) = _one(con, "SELECT sum(BilledCost) FROM core.focus_costs WHERE ChargeCategory = 'Purchase'")
    (usage_effective,) = _one(con, "SELECT sum(EffectiveCost) FROM core.focus_costs WHERE ChargeCategory = 'Usage'")
    (allocated,) = _one(con, "SELECT sum(amount) FROM core.allocated_costs")
    assert purchase_billed > 0 and allocated == usage_effective  # not purchase + usage
    assert allocated != purchase_billed + usage_effective
    (purchase_pieces,) = _one(con, "SELECT sum(a.amount) FROM core.allocated_costs a JOIN core.focus_costs f "
                                   "USING (x_LineId) WHERE f.ChargeCategory = 'Purchase'")  # fmt: skip
    assert purchase_pieces == 0


def test_focus_example_unused_commitment_stays_visible(tmp_path):
    con, _ = _allocated(tmp_path, "commitment_discount_usage_scenario_3.csv")
    assert con.execute("SELECT project, amount FROM core.allocated_costs ORDER BY amount").fetchall() == [
        ("__unallocated__", Decimal("0.25")),  # the unused quarter of the commitment: nobody's, never dropped
        ("vm-team", Decimal("0.75")),
    ]


def test_focus_example_billed_cost_basis_is_the_invoice_view(tmp_path):
    text = RULES.replace("version: 2", "version: 2\ncost_basis: BilledCost")
    con, loaded = _allocated(tmp_path, "commitment_discount_purchase_scenario_1.csv", text)
    assert loaded.rules.cost_basis == "BilledCost"
    assert con.execute("SELECT project, amount, cost_basis FROM core.allocated_costs").fetchall() == [
        ("__unallocated__", Decimal("8760.00"), "BilledCost")
    ]
    assert conservation_violations(con, START, END, "BilledCost") == []
    assert conservation_violations(con, START, END) == [(START, "USD", Decimal(0), Decimal("8760"))]
