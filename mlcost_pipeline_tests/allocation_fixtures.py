"""Hand-made warehouses for the allocation tests: a few FOCUS charges and MLflow runs whose answers are known.

Rules are written as YAML text to a file and loaded with the real loader, so the tests cover what a user writes.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from mlcost_pipeline.allocation.engine import allocate_window
from mlcost_pipeline.allocation.rules import LoadedRules, load_rules
from mlcost_pipeline.normalize.focus_schema import MONEY, MONEY_COLUMNS, conform, line_ids, tags_json
from mlcost_pipeline.normalize.mlflow_records import ML_RUNS_SCHEMA
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.warehouse_fixtures import insert_charges

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)

BASE_RULES = """
version: 2
dimensions:
  project: {tag_keys: [project, proj], aliases: {churn_pred: churn}}
  model: {tag_keys: [model]}
  team: {tag_keys: [team]}
"""


def at(day: date, hour: float = 0) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(hours=hour)


def charge(day: date, cost: str, **kw: object) -> dict:
    """One FOCUS row; keywords override any column (tags= is a dict)."""
    amount = Decimal(cost)
    row = {
        "BilledCost": amount, "EffectiveCost": amount, "ListCost": amount, "ContractedCost": amount,
        "BillingAccountId": "acct", "BillingCurrency": "USD", "BillingPeriodStart": at(day.replace(day=1)),
        "BillingPeriodEnd": at(day.replace(day=28)), "ChargePeriodStart": at(day), "ChargePeriodEnd": at(day, 24),
        "ChargeCategory": "Usage", "InvoiceIssuerName": "X", "ProviderName": "AWS", "PublisherName": "X",
        "ServiceCategory": "Compute", "ServiceName": "EC2", "SubAccountId": "111", "x_ChargeDate": day,
        "x_SourceSystem": "aws_cost_explorer",
    }  # fmt: skip
    tags = kw.pop("tags", None)
    row.update(kw)
    row["Tags"] = tags_json(tags)
    return row


def run(run_id: str, start: datetime, hours: float, gpus: int | None = 1, **tags: str) -> dict:
    end = start + timedelta(hours=hours)
    return {"run_id": run_id, "status": "FINISHED", "start_time": start, "end_time": end, "gpu_count": gpus,
            "cluster": tags.get("cluster"), "resource_id": tags.get("resource_id"),
            "instance_type": tags.get("instance_type"), "project_tag": tags.get("project"),
            "model_tag": tags.get("model"), "tags": json.dumps(tags), "x_RunDate": start.date(),
            "run_name": f"run-{run_id}", "experiment_name": "/exp"}  # fmt: skip


def warehouse(charges: list[dict], runs: list[dict] = (), path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    ensure_schema(con)
    ids = line_ids("test", [(r["x_ChargeDate"], i) for i, r in enumerate(charges)])
    rows = [{**r, "x_LineId": r.get("x_LineId") or lid} for r, lid in zip(charges, ids, strict=True)]
    if rows:
        present = {k for r in rows for k in r}
        money = {c: MONEY for c in MONEY_COLUMNS if c in present}  # exact: no precision inferred from the values
        frame = conform(pl.DataFrame(rows, infer_schema_length=None, schema_overrides=money), "test")
        insert_charges(con, frame)
    if runs:
        frame = pl.DataFrame([{c: r.get(c) for c in ML_RUNS_SCHEMA} for r in runs], schema=ML_RUNS_SCHEMA)
        con.register("_r", frame.to_arrow())
        con.execute("INSERT INTO core.ml_runs BY NAME SELECT * FROM _r")
        con.unregister("_r")
    return con


def rules(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> LoadedRules:
    for name, content in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules(path)


def allocate(con, loaded: LoadedRules, start: date = D1, end: date = D3, reporting: str = "USD"):
    return allocate_window(con, loaded, start, end, reporting)


def shares(con, *columns: str, where: str = "true") -> dict[tuple, Decimal]:
    """sum(amount) by the given columns, e.g. shares(con, "project") -> {("churn",): Decimal(...)}."""
    cols = ", ".join(columns)
    rows = con.execute(
        f"SELECT {cols}, sum(amount) FROM core.allocated_costs WHERE {where} GROUP BY ALL ORDER BY ALL"  # noqa: S608
    ).fetchall()
    return {tuple(r[:-1]): r[-1] for r in rows}
