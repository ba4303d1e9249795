"""The allocation commands of `mlcost`: validate-rules, sql, explain (argument parsing stays in cli.py)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from mlcost_pipeline.allocation.rules import DEFAULT_RULES_PATH, RulesError, load_rules


def validate_rules(path: Path | None) -> int:
    """Exit code 0 and a one-line summary for a valid file; 1 and the one-line error otherwise."""
    from mlcost_pipeline.settings import load_settings

    target = path or load_settings().rules_path or DEFAULT_RULES_PATH
    try:
        loaded = load_rules(target)
    except RulesError as exc:
        print(f"mlcost: invalid rules: {exc}", file=sys.stderr)
        return 1
    rules = loaded.rules
    print(
        f"ok: {target}: {len(rules.dimensions)} dimension(s), {len(rules.pools)} pool(s), "
        f"{len(rules.drivers)} driver(s), {len(loaded.fx_rates)} FX rate(s), "
        f"{len(rules.runs.rate_card)} rate-card price(s); sha256 {loaded.sha256}"
    )
    return 0


def sql_command(path: Path | None, reporting: str | None) -> int:
    """Print the statements the allocation runs for a rules file (exit 0), or one line and exit 1."""
    from mlcost_pipeline.allocation.currency import check_currency
    from mlcost_pipeline.allocation.plan import render_plan
    from mlcost_pipeline.allocation.plan_text import plan_text
    from mlcost_pipeline.settings import load_settings

    settings = load_settings()
    target = path or settings.rules_path or DEFAULT_RULES_PATH
    try:
        loaded = load_rules(target)
    except RulesError as exc:
        print(f"mlcost: invalid rules: {exc}", file=sys.stderr)
        return 1
    try:
        currency = check_currency(reporting or settings.reporting_currency)
    except ValueError as exc:
        print(f"mlcost: --reporting-currency: {exc}", file=sys.stderr)
        return 1
    print(plan_text(render_plan(loaded.rules, loaded.sha256, currency)), end="")
    return 0


def explain_command(project: str, day: date, model: str | None, as_json: bool) -> int:
    from mlcost_pipeline.allocation.explain import NothingToExplain, explain, render_text
    from mlcost_pipeline.settings import load_settings
    from mlcost_pipeline.warehouse.connection import read_connection

    path = load_settings().warehouse_path
    if not path.exists():
        print(f"mlcost: no warehouse at {path}; run `mlcost demo` or `mlcost materialize` first", file=sys.stderr)
        return 1
    with read_connection(path) as con:
        try:
            result = explain(con, project, day, model)
        except NothingToExplain as exc:
            print(f"mlcost: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2) if as_json else render_text(result))
    return 0
