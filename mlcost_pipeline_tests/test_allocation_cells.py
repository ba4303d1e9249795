"""Property test: allocating cost cells gives every line what allocating line by line gives it.

The same random charges, pools, runs and drivers are allocated twice: as they are (lines with the same values in
the columns the rules read merge into one cost cell) and with a tag no rule reads made unique per line (every line
its own cell: the line-grain allocation). Per line and piece, core.allocated_costs must be identical; per day,
project, model, run and currency the cell pieces (what the marts sum) must equal the line-grain pieces exactly in
total and within one 10^-12 unit per line of the group (each line of a split cell rounds once; DESIGN: only a cell
of several lines split into several pieces can differ).
"""

import json
from decimal import Decimal, localcontext

from hypothesis import HealthCheck, given, settings

from mlcost_pipeline.allocation.engine import allocate_window
from mlcost_pipeline.warehouse.invariants import conservation_violations
from mlcost_pipeline_tests.allocation_fixtures import D1, D3, warehouse
from mlcost_pipeline_tests.test_allocation_properties import _loaded, charges, driver_rows, pools, runs

UNIT = Decimal("1e-12")
GROUP = "charge_date, project, model, run_id, billing_currency, reporting_currency"


def _line_grain(rows: list[dict]) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        tags = json.loads(row["Tags"]) if row["Tags"] else {}
        out.append({**row, "Tags": json.dumps({**tags, "zz-line": str(i)})})
    return out


def _allocated(rows, run_rows, loaded):
    con = warehouse(rows, run_rows)
    allocate_window(con, loaded, D1, D3, "USD")
    assert conservation_violations(con, D1, D3) == []
    lines = con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall()
    groups = dict(((r[:-3]), r[-3:]) for r in con.execute(
        f"SELECT {GROUP}, sum(amount), sum(amount_reporting), sum(line_count) FROM core.allocated_cells "
        f"GROUP BY ALL").fetchall())  # fmt: skip
    cells = con.execute("SELECT count(*) FROM core.cost_cells").fetchall()[0][0]
    con.close()
    return lines, groups, cells


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charges(), pools(), runs(), driver_rows)
def test_cell_grain_allocation_agrees_with_line_grain(charge_rows, pool_list, run_rows, table_rows):
    loaded = _loaded(pool_list, table_rows)
    cell_lines, cell_groups, n_cells = _allocated(charge_rows, run_rows, loaded)
    line_lines, line_groups, n_line_cells = _allocated(_line_grain(charge_rows), run_rows, loaded)
    assert n_line_cells == len(charge_rows) and n_cells <= n_line_cells
    assert cell_lines == line_lines  # every line: the same pieces, amounts, ratios and lineage
    assert cell_groups.keys() == line_groups.keys()
    for key, (amount, reporting, lines) in cell_groups.items():
        line_amount, line_reporting, _ = line_groups[key]
        assert abs(amount - line_amount) <= lines * UNIT, key
        assert abs(reporting - line_reporting) <= lines * UNIT, key
    with localcontext(prec=80):  # sums of DECIMAL(38,12) values need more than Python's default 28 digits
        for i in (0, 1):
            assert sum(v[i] for v in cell_groups.values()) == sum(v[i] for v in line_groups.values())
