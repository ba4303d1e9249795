"""`mlcost explain`: the charges, rules and ratios behind one project's (or model's) cost on one UTC day.

Source: core.allocated_cells (the pieces of cost cells) with core.cost_cells and, for each cell, its first line in
core.focus_costs for the charge's context. The figure (`total`) is the sum of `amount_reporting` over the
project-day's pieces, in the reporting currency: exactly the sum of
marts.cost_per_project_daily.amount_reporting for that project and day (with --model: of
marts.cost_per_model_daily for that project, model and day), because both add the same stored decimals.
`total_by_billing_currency` gives the same cost in each billing currency (the marts' `amount`). Money is
rendered as decimal strings so JSON readers do not turn it into floats.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from functools import cache

import duckdb

from mlcost_pipeline.allocation.cells_schema import CELL_KEY
from mlcost_pipeline.allocation.templates import macro

_PARTS_SQL = """
WITH parts AS (
    SELECT a.*, c.cell_key, c.ChargePeriodStart AS cell_start, c.ChargePeriodEnd AS cell_end, c.x_LineId AS cell_line,
           c.ChargeCategory,
           CASE a.cost_basis WHEN 'EffectiveCost' THEN c.EffectiveCost WHEN 'BilledCost' THEN c.BilledCost
                             WHEN 'ListCost' THEN c.ListCost WHEN 'ContractedCost' THEN c.ContractedCost END
               AS charge_amount
    FROM core.allocated_cells AS a JOIN core.cost_cells AS c ON c.x_ChargeDate = a.charge_date AND c.cid = a.cid
    WHERE a.charge_date = $day AND a.project = $project AND ($model IS NULL OR a.model = $model)
), cells AS (
    SELECT DISTINCT cid, cell_key, cell_start, cell_end, cell_line FROM parts
), lines AS (
    SELECT x_LineId, ChargeDescription, ChargePeriodStart, ChargePeriodEnd, {cell_key} AS cell_key
    FROM core.focus_costs WHERE x_ChargeDate = $day
), cell_lines AS (
    SELECT c.cid, min(l.x_LineId) AS first_line, arg_min(l.ChargeDescription, l.x_LineId) AS description
    FROM cells AS c JOIN lines AS l ON l.cell_key = c.cell_key
        AND (c.cell_start IS NULL OR (l.ChargePeriodStart = c.cell_start AND l.ChargePeriodEnd = c.cell_end))
        AND (c.cell_line IS NULL OR l.x_LineId = c.cell_line)
    GROUP BY c.cid
)
SELECT l.first_line, a.line_count, a.piece, a.provider, a.service_name, a.sub_account_id, a.resource_id,
       a.ChargeCategory, l.description, a.billing_currency, a.charge_amount, a.cost_basis, a.ratio, a.amount,
       a.fx_rate, a.fx_source, a.amount_reporting, a.reporting_currency, a.rule_id, a.method, a.model, a.run_id,
       a.run_basis, a.AllocatedMethodDetails, a.rules_hash
FROM parts AS a LEFT JOIN cell_lines AS l USING (cid)
ORDER BY a.rule_id, a.amount_reporting DESC, l.first_line, a.piece
"""
# A part is a piece of a cost cell (the lines of one resource, day and tag set; see allocation/cells_schema.py):
# x_LineId is its first line (`line_count` says how many it sums), charge_amount the cell's cost basis.
_FIELDS = ("x_LineId", "line_count", "piece", "provider", "service", "account", "resource_id", "charge_category",
           "charge_description", "billing_currency", "charge_amount", "cost_basis", "ratio", "amount", "fx_rate",
           "fx_source", "amount_reporting", "reporting_currency", "rule_id", "method", "model", "run_id",
           "run_basis", "details", "rules_hash")  # fmt: skip


@cache
def _parts_sql() -> str:
    return _PARTS_SQL.replace("{cell_key}", macro("_cell_key.sql", "cell_key")(list(CELL_KEY)))


class NothingToExplain(LookupError):
    pass


def _text(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def explain(con: duckdb.DuckDBPyConnection, project: str, day: date, model: str | None = None) -> dict:
    """The explanation as a JSON-ready dict: total, total_by_billing_currency, rules (summary) and parts."""
    rows = con.execute(_parts_sql(), {"day": day, "project": project, "model": model}).fetchall()
    if not rows:
        known = [p for (p,) in con.execute(
            "SELECT DISTINCT project FROM core.allocated_cells WHERE charge_date = $day ORDER BY 1", {"day": day}
        ).fetchall()]  # fmt: skip
        what = f"project {project!r}" + (f" and model {model!r}" if model else "")
        raise NothingToExplain(
            f"no allocated cost for {what} on {day}; projects with cost that day: {', '.join(known) or 'none'}"
        )
    parts = [dict(zip(_FIELDS, row, strict=True)) for row in rows]
    total, by_currency = Decimal(0), defaultdict(Decimal)
    rules: dict[tuple[str, str], dict] = {}
    for p in parts:
        total += p["amount_reporting"]
        by_currency[p["billing_currency"]] += p["amount"]
        summary = rules.setdefault((p["rule_id"], p["method"]), {
            "rule_id": p["rule_id"], "method": p["method"], "parts": 0, "amount_reporting": Decimal(0)})  # fmt: skip
        summary["parts"] += 1
        summary["amount_reporting"] += p["amount_reporting"]
        p["details"] = json.loads(p["details"]) if p["details"] else None
    return {
        "project": project,
        "date": day.isoformat(),
        "model": model,
        "reporting_currency": parts[0]["reporting_currency"],
        "total": str(total),
        "total_by_billing_currency": {c: str(v) for c, v in sorted(by_currency.items())},
        "rules_hashes": sorted({p["rules_hash"] for p in parts}),
        "rules": [{k: _text(v) for k, v in r.items()} for r in
                  sorted(rules.values(), key=lambda r: -r["amount_reporting"])],  # fmt: skip
        "parts": [{k: _text(v) for k, v in p.items() if k not in ("reporting_currency", "rules_hash")}
                  for p in parts],  # fmt: skip
    }


def render_text(result: dict) -> str:
    cur = result["reporting_currency"]
    what = result["project"] + (f" / model {result['model']}" if result["model"] else "")
    lines = [
        f"{what} on {result['date']}: {result['total']} {cur} (reporting currency)",
        "  by billing currency: " + "; ".join(f"{v} {c}" for c, v in result["total_by_billing_currency"].items()),
        f"  rules file sha256: {', '.join(h[:16] for h in result['rules_hashes'])}",
        "",
        f"  {'rule':<34} {'method':<18} {'parts':>5} {'amount (' + cur + ')':>24}",
    ]
    lines += [f"  {r['rule_id']:<34} {r['method']:<18} {r['parts']:>5} {r['amount_reporting']:>24}"
              for r in result["rules"]]  # fmt: skip
    lines += ["", f"  {'charge':<14} {'provider / service':<44} {'charge':>22} {'ratio':>15} "
                  f"{'share':>22} {cur:>22}  rule"]  # fmt: skip
    for p in result["parts"]:
        who = f"{p['provider']} / {p['service']}"[:44]
        extra = "".join(f" {k}={p[k]}" for k in ("model", "run_id") if p[k])
        lines.append(
            f"  {(p['x_LineId'] or '')[:12] + ('#' + str(p['piece']) if p['piece'] else ''):<14} {who:<44} "
            f"{p['charge_amount'] or '':>18} {p['billing_currency']} {p['ratio']:>15} {p['amount']:>18} "
            f"{p['billing_currency']} {p['amount_reporting']:>22}  {p['rule_id']}{extra}"
            + (f" ({p['line_count']} lines)" if p["line_count"] > 1 else "")
        )
    return "\n".join(lines)


def reporting_totals(con: duckdb.DuckDBPyConnection, start: date, end: date) -> dict[str, str]:
    """Exact totals per project in the reporting currency over [start, end), as text."""
    rows = con.execute(
        "SELECT project, reporting_currency, sum(amount_reporting) FROM core.allocated_cells "
        "WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL ORDER BY 3 DESC",
        {"start": start, "end": end},
    ).fetchall()
    return {f"{p} ({cur})": str(total) for p, cur, total in rows}
