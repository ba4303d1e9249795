"""The `mlcost` command: demo, materialize (a date range, end inclusive), explain, validate-rules, sql."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mlcost_pipeline.settings import load_settings, warn_unknown_settings

if TYPE_CHECKING:
    from mlcost_pipeline.run_range import StepFailure

DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def _instance(warehouse_dir: Path):
    import dagster as dg

    # Runs launched here show up in `make ui` when both use the same DAGSTER_HOME.
    home = Path(os.environ.get("DAGSTER_HOME") or warehouse_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # Written aside and renamed: a kill mid-write must not leave a truncated file every later run trips on.
        staging = config.with_name(f".{config.name}.{os.getpid()}.tmp")
        staging.write_text(DAGSTER_YAML)
        os.replace(staging, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@dataclass
class RunOutcome:
    success: bool
    failures: list[StepFailure] = field(default_factory=list)  # in the order the steps failed
    not_applicable: dict[str, str] = field(default_factory=dict)  # check name -> why it does not apply


def materialize_range(start: date, end_inclusive: date, verbose: bool = False) -> RunOutcome:
    """Materialize every asset for [start, end_inclusive] in one in-process run (the single-run backfill path)."""
    import dagster as dg

    from mlcost_pipeline.definitions import defs
    from mlcost_pipeline.run_range import run_range, step_failures

    settings = load_settings()
    print(f"mlcost: materializing {start} .. {end_inclusive} ({(end_inclusive - start).days + 1} day(s))", flush=True)
    result = run_range(
        defs, start, end_inclusive, _instance(settings.warehouse_dir), log_level="DEBUG" if verbose else "WARNING"
    )
    partitions: dict[str, int] = {}
    rows: dict[str, int] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            key = mat.asset_key.to_user_string()
            # A single-run backfill reports one materialization per partition, all with the window's metadata.
            partitions[key] = partitions.get(key, 0) + 1
            count = mat.metadata.get("dagster/row_count")
            rows[key] = count.value if count else 0
    outcome = RunOutcome(result.success, step_failures(result))
    for failure in outcome.failures:
        # The root cause (ours or the data's), not Dagster's "Error occurred while executing op".
        print("  FAILED " + failure.line().replace("\n", "\n         "), flush=True)
    graph = defs.resolve_asset_graph()
    for key, n in partitions.items():
        partitioned = graph.get(dg.AssetKey.from_user_string(key)).partitions_def is not None
        scope = f"{n:>4} day(s)" if partitioned else "   snapshot"
        print(f"  done   {key:<34} {scope} {rows[key]:>9,} rows", flush=True)
    for ev in result.get_asset_check_evaluations():
        reason = ev.metadata.get("not_applicable")
        # A budget over its threshold is news, not broken data (docs/budgets.md): an alert, not a failure.
        failed = "OVER BUDGET" if ev.check_name == "budget_status__within_budget" else "FAILED"
        status = "ok" if ev.passed else f"{failed} ({ev.severity.value})"
        if reason is not None:
            status = f"not applicable: {reason.value}"
            outcome.not_applicable[ev.check_name] = reason.value
        print(f"  check  {ev.asset_key.to_user_string()}:{ev.check_name} {status}", flush=True)
    if result.success:  # BI tools read the snapshot, never the warehouse a run is writing (docs/bi.md)
        from mlcost_pipeline.warehouse.snapshot import publish_bi_snapshot

        print("  " + publish_bi_snapshot(settings.warehouse_path, run_id=result.run_id).summary(), flush=True)
    return outcome


def _not_applicable_summary(not_applicable: dict[str, str]) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for check, reason in sorted(not_applicable.items()):
        by_reason.setdefault(reason, []).append(check)
    return [
        f"Checks not applicable ({len(checks)}): {', '.join(checks)} ({reason})"
        for reason, checks in by_reason.items()
    ]


def _summary(start: date, end_exclusive: date) -> None:
    from mlcost_pipeline.budgets.alerts import summary as budget_summary
    from mlcost_pipeline.warehouse.connection import read_connection
    from mlcost_pipeline.warehouse.summary import render

    path = load_settings().warehouse_path
    with read_connection(path) as con:
        print(render(con, start, end_exclusive, str(path)))
        print(budget_summary(con))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlcost", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline on the sample sources for the last N days (UTC)")
    demo.add_argument("--days", type=int, default=30)
    mat = sub.add_parser("materialize", help="materialize every asset for a date range (end inclusive)")
    mat.add_argument("--start", type=_day, required=True)
    mat.add_argument("--end", type=_day, required=True)
    for p in (demo, mat):
        p.add_argument("-v", "--verbose", action="store_true", help="show Dagster's event log")
    exp = sub.add_parser("explain", help="the charges, rules and ratios behind a project's cost on a day")
    exp.add_argument("--project", required=True)
    exp.add_argument("--date", type=_day, required=True, help="UTC day, YYYY-MM-DD")
    exp.add_argument("--model", help="only the pieces of this model")
    exp.add_argument("--json", action="store_true", help="an object with `total` and `parts` (money as strings)")
    val = sub.add_parser("validate-rules", help="check an allocation rules file; exit 1 with the error if invalid")
    val.add_argument("file", nargs="?", type=Path, help="default: MLCOST_RULES or rules/allocation.yaml")
    sql = sub.add_parser("sql", help="print the SQL the allocation runs for a rules file, with what it binds")
    sql.add_argument("--rules", type=Path, help="default: MLCOST_RULES or rules/allocation.yaml")
    sql.add_argument("--reporting-currency", help="default: MLCOST_REPORTING_CURRENCY or USD")
    args = parser.parse_args(argv)
    warn_unknown_settings(emit=lambda message: print(f"mlcost: warning: {message}", file=sys.stderr))

    if args.command in ("explain", "validate-rules", "sql"):
        from mlcost_pipeline.allocation.commands import explain_command, sql_command, validate_rules

        if args.command == "validate-rules":
            return validate_rules(args.file)
        if args.command == "sql":
            return sql_command(args.rules, args.reporting_currency)
        return explain_command(args.project, args.date, args.model, args.json)

    if args.command == "demo":
        os.environ.setdefault("MLCOST_SOURCES", "sample")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        today = datetime.now(UTC).date()
        start, end = today - timedelta(days=args.days), today - timedelta(days=1)
        label = f"--days {args.days} (from {start})"
    else:
        start, end, label = args.start, args.end, None
    from mlcost_pipeline.run_range import check_range

    try:  # before Dagster runs anything: a bad setting or range is one line, not a trace of every step
        check_range(start, end, load_settings().first_partition, label)
    except ValueError as exc:
        print(f"mlcost: {exc}", file=sys.stderr)
        return 2
    outcome = materialize_range(start, end, verbose=args.verbose)
    if not outcome.success:
        cause = f": {outcome.failures[0].line()}" if outcome.failures else "; see the lines above"
        print(f"mlcost: the run failed{cause}", file=sys.stderr)
        return 1
    _summary(start, end + timedelta(days=1))
    for line in _not_applicable_summary(outcome.not_applicable):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
