"""Budget thresholds and marts.budget_alerts: which budgets crossed WARN / ERROR, recorded once each.

An alert is one (month, budget, basis, level): `basis` is `actual` (month-to-date) or `forecast` (month-end), per
MLCOST_BUDGET_ALERT_ON; `level` WARN when the amount reaches warn_pct of the budget, ERROR at error_pct (both
inclusive, compared on the exact amounts). A budget at 110% raises both its WARN and its ERROR alert. The table is
append-only and keyed by `alert_key`: a rerun, or the next day's run at the same level, adds nothing; only the
delivery columns of an existing alert change (the webhook's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import duckdb

ALERTS_TABLE = "marts.budget_alerts"
BASES = ("actual", "forecast")
WARN, ERROR = "WARN", "ERROR"

# Delivery: `sent`, `failed` (tried again on the next evaluation) or `off` (no webhook configured when raised:
# never sent later, so configuring a webhook does not replay old alerts).
ALERTS_COLUMNS: list[tuple[str, str]] = [
    ("alert_key", "VARCHAR NOT NULL"),  # month|budget_id|basis|level
    ("month", "DATE NOT NULL"),
    ("budget_id", "VARCHAR NOT NULL"),
    ("project", "VARCHAR NOT NULL"),
    ("model", "VARCHAR"),
    ("basis", "VARCHAR NOT NULL"),  # actual | forecast
    ("level", "VARCHAR NOT NULL"),  # WARN | ERROR
    ("threshold_pct", "DECIMAL(9, 4) NOT NULL"),
    ("amount", "DECIMAL(38, 12) NOT NULL"),  # the actual or forecast amount when raised
    ("budget_amount", "DECIMAL(38, 12) NOT NULL"),
    ("pct", "DECIMAL(38, 2) NOT NULL"),
    ("currency", "VARCHAR NOT NULL"),
    ("as_of_date", "DATE NOT NULL"),
    ("raised_at", "TIMESTAMP NOT NULL"),  # UTC
    ("delivery", "VARCHAR NOT NULL"),
    ("delivered_at", "TIMESTAMP"),
    ("delivery_error", "VARCHAR"),  # never holds the webhook URL
    ("delivery_attempts", "INTEGER NOT NULL"),
]


@dataclass(frozen=True)
class Status:
    """The fields of one marts.budget_status row that thresholds read."""

    month: date
    budget_id: str
    project: str
    model: str | None
    currency: str
    budget_amount: Decimal
    actual_amount: Decimal
    forecast_amount: Decimal
    warn_pct: Decimal
    error_pct: Decimal
    as_of_date: date
    days_remaining: int = 0


@dataclass(frozen=True)
class Alert:
    month: date
    budget_id: str
    project: str
    model: str | None
    basis: str
    level: str
    threshold_pct: Decimal
    amount: Decimal
    budget_amount: Decimal
    currency: str
    as_of_date: date

    @property
    def key(self) -> str:
        return f"{self.month:%Y-%m}|{self.budget_id}|{self.basis}|{self.level}"

    @property
    def pct(self) -> Decimal:
        # Half away from zero, as marts.budget_status rounds its percents.
        return (self.amount * 100 / self.budget_amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def levels(
    amount: Decimal, budget: Decimal, warn_pct: Decimal, error_pct: Decimal
) -> list[tuple[str, Decimal]]:
    """Every threshold `amount` reaches, lowest first: [] , [WARN] or [WARN, ERROR] (exact comparison)."""
    reached = []
    for level, pct in ((WARN, warn_pct), (ERROR, error_pct)):
        if amount * 100 >= budget * pct:
            reached.append((level, pct))
    return reached


def evaluate(statuses: list[Status], alert_on: tuple[str, ...]) -> list[Alert]:
    """The alerts the statuses call for, on each basis in `alert_on`, sorted by key.

    A complete month's forecast is its actual: with both bases on, it raises only the actual alerts.
    """
    alerts = []
    for s in statuses:
        for basis in alert_on:
            if basis == "forecast" and s.days_remaining == 0 and "actual" in alert_on:
                continue
            amount = s.actual_amount if basis == "actual" else s.forecast_amount
            for level, pct in levels(amount, s.budget_amount, s.warn_pct, s.error_pct):
                alerts.append(Alert(s.month, s.budget_id, s.project, s.model, basis, level, pct, amount,
                                    s.budget_amount, s.currency, s.as_of_date))  # fmt: skip
    return sorted(alerts, key=lambda a: a.key)


def worst_level(alerts: list[Alert]) -> str | None:
    return ERROR if any(a.level == ERROR for a in alerts) else (WARN if alerts else None)


def read_statuses(con: duckdb.DuckDBPyConnection, current_month_only: bool = False) -> list[Status]:
    """Rows of marts.budget_status; with `current_month_only`, those of its latest month."""
    where = "WHERE month = (SELECT max(month) FROM marts.budget_status)" if current_month_only else ""
    rows = con.execute(
        "SELECT month, budget_id, project, model, currency, budget_amount, actual_amount, forecast_amount, "
        f"warn_pct, error_pct, as_of_date, days_remaining FROM marts.budget_status {where} ORDER BY month, budget_id"  # noqa: S608
    ).fetchall()
    return [Status(*r) for r in rows]


def ensure_alerts_table(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in ALERTS_COLUMNS)
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} ({cols})")


def append_alerts(
    con: duckdb.DuckDBPyConnection, alerts: list[Alert], raised_at: datetime, webhook_configured: bool
) -> list[Alert]:
    """Insert the alerts whose key is not in the table yet (one transaction); returns those inserted."""
    ensure_alerts_table(con)
    con.execute("BEGIN TRANSACTION")
    try:
        existing = {r[0] for r in con.execute(f"SELECT alert_key FROM {ALERTS_TABLE}").fetchall()}  # noqa: S608
        new = [a for a in alerts if a.key not in existing]
        delivery = "pending" if webhook_configured else "off"
        if new:
            marks = ", ".join("?" for _ in ALERTS_COLUMNS)
            con.executemany(
                f"INSERT INTO {ALERTS_TABLE} VALUES ({marks})",  # noqa: S608 (constant name)
                [
                    [a.key, a.month, a.budget_id, a.project, a.model, a.basis, a.level, a.threshold_pct, a.amount,
                     a.budget_amount, a.pct, a.currency, a.as_of_date, raised_at, delivery, None, None, 0]
                    for a in new
                ],
            )  # fmt: skip
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return new


def undelivered(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Alerts waiting for the webhook: just raised (`pending`) or whose last delivery `failed`."""
    ensure_alerts_table(con)
    rows = con.execute(
        "SELECT month, budget_id, project, model, basis, level, threshold_pct, amount, budget_amount, currency, "
        f"as_of_date FROM {ALERTS_TABLE} WHERE delivery IN ('pending', 'failed') ORDER BY alert_key"  # noqa: S608
    ).fetchall()
    return [Alert(*r) for r in rows]


def record_delivery(con: duckdb.DuckDBPyConnection, keys: list[str], at: datetime, error: str | None) -> None:
    """The webhook's outcome for these alerts: `sent` with the time, or `failed` with the (URL-free) error."""
    if not keys:
        return
    con.execute(
        f"UPDATE {ALERTS_TABLE} SET delivery = $delivery, delivered_at = $at, delivery_error = $error, "  # noqa: S608
        "delivery_attempts = delivery_attempts + 1 WHERE list_contains($keys, alert_key)",
        {
            "delivery": "failed" if error else "sent",
            "at": None if error else at,
            "error": error,
            "keys": keys,
        },
    )


def summary(con: duckdb.DuckDBPyConnection, limit: int = 5) -> str:
    """What `mlcost demo` prints about budgets: the latest month's highest alert per budget, worst first."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}  # fmt: skip
    if "budget_alerts" not in tables:
        return "Budgets: no marts.budget_alerts table yet"
    rows = con.execute(
        f"""SELECT month, budget_id, level, basis, pct FROM {ALERTS_TABLE}
        WHERE month = (SELECT max(month) FROM {ALERTS_TABLE})
        QUALIFY row_number() OVER (PARTITION BY budget_id ORDER BY pct DESC, level, basis) = 1
        ORDER BY pct DESC, budget_id"""  # noqa: S608 (constant name)
    ).fetchall()
    if not rows:
        return "Budgets: no alert in marts.budget_alerts"
    head = f"Budgets over a threshold in {rows[0][0]:%Y-%m} (marts.budget_alerts; all months: marts.budget_status):"
    lines = [
        f"  {level:<5} {budget:<28} {basis:<8} {pct:>8}% of budget" for _, budget, level, basis, pct in rows
    ]
    more = [f"  … and {len(rows) - limit} more"] if len(rows) > limit else []
    return "\n".join([head, *lines[:limit], *more])
