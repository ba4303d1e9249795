"""Budgets in Dagster (docs/budgets.md): core.budgets from the budgets file, marts.budget_alerts, and two checks.

marts.budget_status is a SQL model (dbt_like_sql/marts/budget_status.sql) between them. The logic lives in
mlcost_pipeline/budgets/; this module only wires it: which file, which basis, which webhook.
"""

import os
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from mlcost_pipeline.budgets.alerts import (
    ALERTS_TABLE,
    append_alerts,
    ensure_alerts_table,
    evaluate,
    read_statuses,
    record_delivery,
    undelivered,
    worst_level,
)
from mlcost_pipeline.budgets.config import load_budgets
from mlcost_pipeline.budgets.table import write_budgets
from mlcost_pipeline.budgets.webhook import check_url, message, post, redact_url
from mlcost_pipeline.defs.metadata import preview
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import Settings

BUDGETS_KEY = dg.AssetKey(["core", "budgets"])
STATUS_KEY = dg.AssetKey(["marts", "budget_status"])
ALERTS_KEY = dg.AssetKey(["marts", "budget_alerts"])


class BudgetWebhookResource(dg.ConfigurableResource):
    """Where budget alerts are POSTed (MLCOST_BUDGET_WEBHOOK_URL); empty: no webhook. The URL holds a secret."""

    url: str | None = None


def _webhook(settings: Settings) -> BudgetWebhookResource:
    url = settings.budget_webhook_url
    if url:
        check_url(url)  # a malformed URL stops the code location from loading, naming only scheme and host
    # As an EnvVar the UI and the run config show the variable's name, never the token; the value is read at run
    # time. (Settings built from a dict, as in tests, keep the plain value.)
    if url and os.environ.get("MLCOST_BUDGET_WEBHOOK_URL", "").strip() == url:
        return BudgetWebhookResource(url=dg.EnvVar("MLCOST_BUDGET_WEBHOOK_URL"))
    return BudgetWebhookResource(url=url)


def build_budget_defs(
    settings: Settings,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition], dict[str, object]]:
    """Assets, checks and resources of the budgets feature, for the given settings."""
    # An invalid budgets file stops the code location from loading, with the file and field in the message.
    loaded = load_budgets(settings.budgets_path, settings.reporting_currency)
    budgets_path, currency, alert_on = (
        settings.budgets_path,
        settings.reporting_currency,
        settings.budget_alert_on,
    )

    @dg.asset(
        key=BUDGETS_KEY,
        group_name="core",
        kinds={"duckdb", "yaml"},
        # A budgets change shows core.budgets and everything downstream as changed in the UI.
        code_version=f"budgets-v1-{loaded.sha256[:16]}-{currency}",
        description="The budgets file (MLCOST_BUDGETS, default rules/budgets.yaml) as a table. Grain: one row per "
        "budget default (month NULL) and per month override.",
    )
    def budgets(warehouse: WarehouseResource) -> dg.MaterializeResult:
        fresh = load_budgets(budgets_path, currency)
        with warehouse.writer() as con:
            n = write_budgets(con, fresh)
            rows = con.sql(
                "SELECT * EXCLUDE (source_file, source_sha256) FROM core.budgets ORDER BY ALL"
            ).pl()
        return dg.MaterializeResult(metadata={
            "dagster/row_count": n, "budgets": len(fresh.file.budgets), "source": fresh.source,
            "sha256": fresh.sha256, "currency": fresh.file.currency, "preview": preview(rows),
        })  # fmt: skip

    @dg.asset(
        key=ALERTS_KEY,
        deps=[STATUS_KEY],
        group_name="marts",
        kinds={"duckdb", "python"},
        description="Budget alerts, append-only: one row per (month, budget, basis, level) the first time a budget's "
        "actual or forecast cost reaches the WARN or ERROR threshold; POSTed to MLCOST_BUDGET_WEBHOOK_URL if set.",
    )
    def budget_alerts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, budget_webhook: BudgetWebhookResource
    ) -> dg.MaterializeResult:
        url = budget_webhook.url
        now = datetime.now(UTC).replace(tzinfo=None)
        with warehouse.writer() as con:
            new = append_alerts(
                con, evaluate(read_statuses(con), alert_on), now, webhook_configured=bool(url)
            )
            pending = undelivered(con) if url else []
        for a in new:
            context.log.warning(f"budget {a.level}: {a.budget_id} {a.month:%Y-%m} {a.basis} {a.amount:,.2f} "
                                f"{a.currency} = {a.pct}% of {a.budget_amount:,.2f}")  # fmt: skip
        delivery = "off" if not url else "nothing to send"
        if url and pending:
            # Outside the write lock: a slow webhook must not hold up other writers.
            result = post(url, message(pending))
            with warehouse.writer() as con:
                record_delivery(con, [a.key for a in pending], now, result.error)
            delivery = f"sent {len(pending)} alert(s)" if result.ok else f"FAILED: {result.error}"
            if not result.ok:
                # Visible, never silent: the error here, a failed check (budget_alerts__delivered), and a retry
                # of these alerts on the next run. The pipeline itself carries on.
                context.log.error(f"budget webhook {redact_url(url)}: {result.error}; "
                                  f"{len(pending)} alert(s) kept for the next run")  # fmt: skip
        with warehouse.writer() as con:
            total = con.execute(f"SELECT count(*) FROM {ALERTS_TABLE}").fetchall()[0][0]  # noqa: S608
            latest = con.sql(
                f"SELECT month, budget_id, basis, level, pct, amount, budget_amount, delivery FROM {ALERTS_TABLE} "  # noqa: S608
                "ORDER BY raised_at DESC, alert_key LIMIT 10"
            ).pl()
        return dg.MaterializeResult(metadata={
            "dagster/row_count": total, "new_alerts": len(new),
            "new_alert_keys": dg.MetadataValue.json([a.key for a in new]),
            "webhook": redact_url(url) if url else "off", "delivery": delivery, "latest": preview(latest),
        })  # fmt: skip

    @dg.asset_check(
        asset=STATUS_KEY,
        name="budget_status__within_budget",
        description="Fails with WARN when a budget's current-month cost (actual or forecast, per "
        "MLCOST_BUDGET_ALERT_ON) reaches its warn threshold, with ERROR at its error threshold. Not blocking.",
    )
    def within_budget(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.writer() as con:
            alerts = evaluate(read_statuses(con, current_month_only=True), alert_on)
        worst = worst_level(alerts)
        top = {}
        for a in alerts:  # the highest level per (budget, basis)
            if (a.budget_id, a.basis) not in top or a.level == "ERROR":
                top[(a.budget_id, a.basis)] = a
        over = pl.DataFrame(
            [{"budget": a.budget_id, "basis": a.basis, "level": a.level, "pct": str(a.pct), "as_of": a.as_of_date}
             for a in top.values()],
            schema={"budget": pl.String, "basis": pl.String, "level": pl.String, "pct": pl.String, "as_of": pl.Date},
        )  # fmt: skip
        return dg.AssetCheckResult(
            passed=worst is None,
            severity=dg.AssetCheckSeverity.ERROR if worst == "ERROR" else dg.AssetCheckSeverity.WARN,
            metadata={
                "over_threshold": len(top),
                "alert_on": ",".join(alert_on),
                "budgets": preview(over, 20),
            },
        )

    @dg.asset_check(
        asset=ALERTS_KEY,
        name="budget_alerts__delivered",
        description="Fails (WARN) while an alert could not be POSTed to the webhook; it is retried on the next run.",
    )
    def delivered(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.writer() as con:
            ensure_alerts_table(con)
            failed = con.execute(
                f"SELECT count(*), max(delivery_error) FROM {ALERTS_TABLE} WHERE delivery = 'failed'"  # noqa: S608
            ).fetchall()[0]
        return dg.AssetCheckResult(
            passed=failed[0] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"undelivered": failed[0], "last_error": failed[1] or ""},
        )

    return [budgets, budget_alerts], [within_budget, delivered], {"budget_webhook": _webhook(settings)}
