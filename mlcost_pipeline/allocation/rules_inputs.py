"""Rules-file models for the inputs allocation reads besides billing: usage drivers, FX rates, the run rate card.

Also the readers of the two small files a rules file can name: a driver CSV (`date,project[,model],quantity`)
and the FX rates CSV (`date,from_currency,to_currency,rate`: 1 from_currency = rate to_currency). Both are read
with Decimal, whole, at load time; a bad row is an error naming the file, the row and the column.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from mlcost_pipeline.allocation.currency import check_currency


class DriverSource(BaseModel):
    """A usage driver besides GPU-hours: a CSV file or a SELECT on the warehouse returning day/project/quantity."""

    model_config = ConfigDict(extra="forbid")

    csv: str | None = None  # path relative to the rules file
    sql: str | None = None  # one SELECT returning columns day, project, quantity and optionally model
    unit: str = "units"
    description: str = ""

    @model_validator(mode="after")
    def _exactly_one(self) -> DriverSource:
        if (self.csv is None) == (self.sql is None):
            raise ValueError("give exactly one of csv and sql")
        return self

    @field_validator("sql")
    @classmethod
    def _one_select(cls, sql: str | None) -> str | None:
        if sql is None:
            return None
        try:
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        except sqlglot.errors.ParseError as exc:
            raise ValueError(f"not valid SQL: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise ValueError("must be exactly one SELECT statement")
        return sql.strip().rstrip(";")


class CurrencyRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rates_file: str | None = "fx_rates.csv"  # relative to the rules file; null: no file
    use_provider_rates: bool = True  # GCP currency_conversion_rate etc. (x_CurrencyConversionRate), to USD only
    max_rate_age_days: int | None = Field(None, ge=0)  # a file rate older than this on the charge day is missing

    def resolved_rates_file(self, base: Path) -> Path | None:
        if self.rates_file is None:
            return None
        path = (base / self.rates_file).resolve()
        # The default name is optional (a rules file without foreign currencies needs no rates); a named one is not.
        if not path.exists() and "rates_file" not in self.model_fields_set:
            return None
        return path


class RateCardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hourly: Decimal = Field(gt=0)  # price of one instance-hour, in the rate card's currency
    gpus: int = Field(1, ge=1)  # GPUs per instance


class RunCostRules(BaseModel):
    """How runs get cost (DESIGN.md §5): direct charges, pool shares, else a rate-card estimate."""

    model_config = ConfigDict(extra="forbid")

    direct_tag_keys: list[str] = Field(default_factory=lambda: ["mlflow_run_id"])  # charge tags naming a run
    match_resource_id: bool = True  # a charge on a run's dedicated resource_id goes to the run by overlap
    rate_card_currency: str = "USD"
    rate_card: dict[str, RateCardEntry] = Field(default_factory=dict)  # instance type -> price

    @field_validator("direct_tag_keys")
    @classmethod
    def _lower(cls, keys: list[str]) -> list[str]:
        return [k.strip().lower() for k in keys]

    @field_validator("rate_card_currency")
    @classmethod
    def _currency(cls, code: str) -> str:
        return check_currency(code)


def _rows(path: Path, where: str, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise _error(f"{where}: cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            raise _error(f"{path}: header: missing column(s) {missing}; expected {list(required)}")
        reader.fieldnames = header
        return [(n, {k: (v or "").strip() for k, v in r.items() if k}) for n, r in enumerate(reader, start=2)
                if any((v or "").strip() for v in r.values())]  # fmt: skip


def _error(message: str) -> Exception:
    from mlcost_pipeline.allocation.rules import RulesError

    return RulesError(message)


def _decimal(path: Path, n: int, column: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _error(f"{path}: row {n}: {column}: not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise _error(f"{path}: row {n}: {column}: not a finite number: {text!r}")
    return value


def _day(path: Path, n: int, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _error(f"{path}: row {n}: date: not a YYYY-MM-DD date: {text!r}") from None


def read_fx_rates(path: Path, where: str) -> list[tuple[date, str, str, Decimal]]:
    out, seen = [], set()
    for n, row in _rows(path, where, ("date", "from_currency", "to_currency", "rate")):
        day = _day(path, n, row["date"])
        codes = []
        for column in ("from_currency", "to_currency"):
            try:
                codes.append(check_currency(row[column]))
            except ValueError as exc:
                raise _error(f"{path}: row {n}: {column}: {exc}") from None
        rate = _decimal(path, n, "rate", row["rate"])
        if rate <= 0:
            raise _error(f"{path}: row {n}: rate: must be positive, got {row['rate']!r}")
        key = (day, *codes)
        if key in seen:
            raise _error(f"{path}: row {n}: a second rate for {codes[0]}->{codes[1]} on {day}")
        seen.add(key)
        out.append((day, codes[0], codes[1], rate))
    return sorted(out)


def read_driver_csv(path: Path, where: str) -> list[tuple[date | None, str, str | None, Decimal]]:
    out = []
    for n, row in _rows(path, where, ("date", "project", "quantity")):
        if not row["project"]:
            raise _error(f"{path}: row {n}: project: empty")
        quantity = _decimal(path, n, "quantity", row["quantity"])
        if quantity < 0:
            raise _error(f"{path}: row {n}: quantity: must not be negative, got {row['quantity']!r}")
        day = _day(path, n, row["date"]) if row["date"] else None  # blank: every day without dated rows
        out.append((day, row["project"], row.get("model") or None, quantity))
    return out
