"""The budgets file (YAML; default rules/budgets.yaml, or MLCOST_BUDGETS), validated with pydantic on load.

Budgets are per project, or per (project, model), in the reporting currency per calendar month (UTC), with
optional per-month overrides and warn / error thresholds in percent. A bad file fails with one line naming the
file, the field path and what is wrong, as the allocation rules do (allocation/rules.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlcost_pipeline.config_files import read_yaml_mapping, validation_message

DEFAULT_BUDGETS_PATH = Path(__file__).resolve().parents[2] / "rules" / "budgets.yaml"
MONEY_PLACES = 12  # DECIMAL(38,12), as every amount in the warehouse
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


class BudgetsError(ValueError):
    """A one-line message naming the file, the field path and what is wrong."""


def _exact(value: object, what: str) -> Decimal:
    # YAML reads 1200.10 as a float; its shortest repr is the text the user wrote, so str() gives it back exactly.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if amount.as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
        raise ValueError(f"{what} has more than {MONEY_PLACES} decimal places: {value!r}")
    return amount


class Thresholds(BaseModel):
    """Percent of the budget at which an alert is raised: WARN at `warn`, ERROR at `error` (inclusive)."""

    model_config = ConfigDict(extra="forbid")

    warn: Decimal = Decimal(80)
    error: Decimal = Decimal(100)

    @field_validator("warn", "error", mode="before")
    @classmethod
    def _number(cls, v: object) -> Decimal:
        pct = _exact(v, "a threshold")
        if pct <= 0:
            raise ValueError(f"a threshold must be a positive percent, got {v!r}")
        return pct

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warn >= self.error:
            raise ValueError(f"@warn: warn ({self.warn}) must be below error ({self.error})")
        return self


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        None, description="Stable name used in alert keys; default project or project/model."
    )
    project: str = Field(min_length=1, description="As it appears in core.allocated_costs.project.")
    model: str | None = Field(
        None, min_length=1, description="Only this model's cost (core.allocated_costs.model)."
    )
    monthly: Decimal = Field(description="Budget per calendar month, in the budgets file's currency.")
    months: dict[str, Decimal] = Field(
        default_factory=dict, description="'YYYY-MM' -> amount for that month."
    )
    thresholds: Thresholds | None = None

    @field_validator("monthly", mode="before")
    @classmethod
    def _monthly(cls, v: object) -> Decimal:
        return _positive(v, "monthly")

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, v: object) -> dict[str, Decimal]:
        if not isinstance(v, dict):
            raise ValueError(f"expected a mapping of 'YYYY-MM' to an amount, got {type(v).__name__}")
        out = {}
        for key, amount in v.items():
            # A full date (2026-12-01) would load as a date: only 'YYYY-MM' names a month here.
            text = str(key)
            if not _MONTH.match(text):
                raise ValueError(f"@{text}: month keys are 'YYYY-MM' (quoted), got {key!r}")
            out[text] = _positive(amount, f"months.{text}")
        return out

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not _ID.match(v):
            raise ValueError(f"an id is letters, digits and _ . : / - (no spaces), got {v!r}")
        return v

    @property
    def budget_id(self) -> str:
        return self.id or (f"{self.project}/{self.model}" if self.model else self.project)


class BudgetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    currency: str = Field(min_length=3, max_length=3, description="Must equal MLCOST_REPORTING_CURRENCY.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    budgets: list[Budget] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()

    @model_validator(mode="after")
    def _unique(self) -> BudgetsFile:
        ids: dict[str, int] = {}
        scopes: dict[tuple[str, str | None], int] = {}
        for i, b in enumerate(self.budgets):
            scope = (b.project, b.model)
            if scope in scopes:
                what = f"project {b.project!r}" + (f", model {b.model!r}" if b.model else "")
                raise ValueError(f"@budgets.{i}: a second budget for {what} (first: budgets.{scopes[scope]})")
            if b.budget_id in ids:
                raise ValueError(
                    f"@budgets.{i}.id: duplicate budget id {b.budget_id!r} (first: budgets.{ids[b.budget_id]})"
                )
            ids[b.budget_id], scopes[scope] = i, i
        return self


def _positive(v: object, what: str) -> Decimal:
    amount = _exact(v, what)
    if amount <= 0:
        raise ValueError(f"{what} must be a positive amount, got {v!r}")
    return amount


@dataclass(frozen=True)
class BudgetRow:
    """One row of core.budgets: a budget's default (month None) or its amount for one month."""

    budget_id: str
    project: str
    model: str | None
    month: date | None
    amount: Decimal
    currency: str
    warn_pct: Decimal
    error_pct: Decimal


@dataclass(frozen=True)
class LoadedBudgets:
    file: BudgetsFile
    source: str
    sha256: str

    def rows(self) -> list[BudgetRow]:
        out = []
        for b in self.file.budgets:
            t = b.thresholds or self.file.thresholds
            amounts = [(None, b.monthly)] + [
                (date.fromisoformat(m + "-01"), a) for m, a in sorted(b.months.items())
            ]
            for month, amount in amounts:
                out.append(
                    BudgetRow(
                        b.budget_id, b.project, b.model, month, amount, self.file.currency, t.warn, t.error
                    )
                )
        return out


def load_budgets(path: Path | str | None = None, reporting_currency: str | None = None) -> LoadedBudgets:
    """Read and validate a budgets file; every problem is a BudgetsError of one line naming the file and field.

    With `reporting_currency`, the file's `currency` must equal it: budgets are compared with amount_reporting.
    """
    path = Path(path) if path else DEFAULT_BUDGETS_PATH
    text, data = read_yaml_mapping(path, "budgets", BudgetsError, "'currency' and 'budgets'")
    try:
        parsed = BudgetsFile.model_validate(data)
    except ValidationError as exc:
        raise BudgetsError(validation_message(path, exc)) from exc
    if reporting_currency and parsed.currency != reporting_currency.upper():
        raise BudgetsError(
            f"{path}: currency: budgets are in {parsed.currency} but the reporting currency "
            f"(MLCOST_REPORTING_CURRENCY) is {reporting_currency.upper()}; budgets are compared with amount_reporting"
        )
    return LoadedBudgets(parsed, str(path), hashlib.sha256(text.encode()).hexdigest())
