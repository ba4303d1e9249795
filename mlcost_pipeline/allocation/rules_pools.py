"""Rules-file models for who owns what when tags do not say: fallbacks, and shared pools with their targets.

A pool selects charges (tags, provider, service, account, resource group, resource id, charge category) and
splits each of them among targets by one method: `even`, `fixed` weights, `proportional_cost` (targets' direct
cost that day) or `proportional_usage` (a usage driver). Pools are tried in file order; the first match wins.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_DRIVERS = frozenset({"gpu_hours"})
CHARGE_CATEGORY = Literal["Usage", "Purchase", "Tax", "Credit", "Adjustment"]
_DIMS = ("project", "model", "team", "environment", "cost_center")


def _re2_problem(pattern: str) -> str | None:
    """What DuckDB's RE2 says about a pattern, or None. A separate frame: no traceback keeps the connection alive."""
    import duckdb

    with duckdb.connect() as con:  # short-lived: a cached connection outlives the interpreter's teardown
        try:
            con.execute("SELECT regexp_matches('', $p)", {"p": pattern}).fetchall()
        except duckdb.Error as exc:  # InvalidInputException for what RE2 cannot compile
            return str(exc)
    return None


def checked_regex(pattern: str) -> str:
    """A pattern both Python and DuckDB (RE2) accept: the rules are applied in DuckDB, validated here."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
    problem = _re2_problem(pattern)
    if problem:
        raise ValueError(f"regular expression {pattern!r} is not supported by DuckDB (RE2): {problem}")
    return pattern


def _assignment(value: object) -> object:
    # Shorthand: a plain string names the project.
    return {"project": value} if isinstance(value, str) else value


def _check_dims(values: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(values) - set(_DIMS))
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; allowed: {list(_DIMS)}")
    if not values:
        raise ValueError("assigns nothing; give at least a project")
    return values


class ResourceIdFallback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(description="Regular expression searched in ResourceId (RE2 syntax).")
    assign: dict[str, str] = Field(description="Dimension values for charges whose ResourceId matches.")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        return checked_regex(value)

    @field_validator("assign", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return _assignment(value)

    @field_validator("assign")
    @classmethod
    def _dims(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_dims(value)


class Fallbacks(BaseModel):
    """Owners for charges no tag names; per dimension the most specific source wins: resource id, group, account."""

    model_config = ConfigDict(extra="forbid")

    resource_ids: list[ResourceIdFallback] = Field(default_factory=list)
    resource_groups: dict[str, dict[str, str]] = Field(default_factory=dict)
    accounts: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("resource_groups", "accounts", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {k: _assignment(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("resource_groups", "accounts")
    @classmethod
    def _known(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for key, assign in value.items():
            try:
                _check_dims(assign)
            except ValueError as exc:
                raise ValueError(f"@{key}: {exc}") from None
        return value

    def assignments(self) -> list[tuple[str, dict[str, str]]]:
        out = [(f"resource_ids.{i}.assign", f.assign) for i, f in enumerate(self.resource_ids)]
        out += [(f"resource_groups.{k}", v) for k, v in self.resource_groups.items()]
        return out + [(f"accounts.{k}", v) for k, v in self.accounts.items()]


class Selector(BaseModel):
    """Which charges a pool takes. Criteria are ANDed; the values of one list are ORed; strings match exactly."""

    model_config = ConfigDict(extra="forbid")

    tags: dict[str, str | list[str]] = Field(default_factory=dict)  # key (any case) -> value(s); "*" = any value
    providers: list[str] = Field(default_factory=list)  # ProviderName
    services: list[str] = Field(default_factory=list)  # ServiceName
    service_categories: list[str] = Field(default_factory=list)  # ServiceCategory
    accounts: list[str] = Field(default_factory=list)  # SubAccountId: AWS account, subscription, GCP project
    resource_groups: list[str] = Field(default_factory=list)  # x_ResourceGroupName (Azure), case-insensitive
    resource_id_regex: str | None = None
    charge_categories: list[CHARGE_CATEGORY] = Field(default_factory=list)
    unowned_only: bool = False  # only charges that no tag or fallback gives a project

    @field_validator("resource_id_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else checked_regex(value)

    @model_validator(mode="after")
    def _selects_something(self) -> Selector:
        criteria = [self.tags, self.providers, self.services, self.service_categories, self.accounts,
                    self.resource_groups, self.resource_id_regex, self.charge_categories]  # fmt: skip
        if not any(criteria):
            raise ValueError("selects every charge; give at least one criterion besides unowned_only")
        return self

    def tag_pairs(self) -> list[tuple[str, list[str]]]:
        return [(k.strip().lower(), [v] if isinstance(v, str) else list(v)) for k, v in self.tags.items()]


class Target(BaseModel):
    """Who receives a share: a project, optionally with other dimension values, and a weight for `fixed`."""

    model_config = ConfigDict(extra="forbid")

    project: str
    model: str | None = None
    team: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    weight: Decimal | None = Field(None, ge=0)

    def dimension_values(self) -> dict[str, str]:
        return {d: getattr(self, d) for d in _DIMS if getattr(self, d) is not None}


class ConsumedQuantityCapacity(BaseModel):
    """Capacity from the pool's own charges: sum(ConsumedQuantity) x per_unit over the matching rows that day."""

    model_config = ConfigDict(extra="forbid")

    sku_ids: list[str] = Field(default_factory=list)  # only rows with these SkuIds (e.g. the GPU SKU)
    consumed_unit: str | None = None  # only rows with this ConsumedUnit
    per_unit: str = "1"  # driver units per consumed unit: "8" (GPUs per instance-hour), "1/3600" (per second)

    @field_validator("per_unit", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> str:
        try:
            f = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"not a number or fraction like '8' or '1/3600': {value!r}") from None
        if f <= 0:
            raise ValueError(f"must be positive, got {value!r}")
        return str(f)

    def fraction(self) -> Fraction:
        return Fraction(self.per_unit)


class Capacity(BaseModel):
    """Paid capacity of a usage pool per day, in the driver's unit; exactly one of the two ways."""

    model_config = ConfigDict(extra="forbid")

    per_day: Decimal | None = Field(None, gt=0)
    from_consumed_quantity: ConsumedQuantityCapacity | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Capacity:
        if (self.per_day is None) == (self.from_consumed_quantity is None):
            raise ValueError("give exactly one of per_day and from_consumed_quantity")
        return self


class RunFilter(BaseModel):
    """Which MLflow runs use a pool (driver gpu_hours): the run's `cluster` tag and instance type."""

    model_config = ConfigDict(extra="forbid")

    cluster: str | None = None
    instance_type_regex: str | None = None

    @field_validator("instance_type_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else checked_regex(value)


class Pool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    description: str = ""
    select: Selector
    method: Literal["even", "fixed", "proportional_cost", "proportional_usage"]
    targets: list[Target] = Field(default_factory=list)
    scope: Literal["all", "provider"] = "all"  # proportional_cost: direct cost of all providers, or the charge's
    driver: str | None = None
    grain: Literal["project", "model", "run"] = "project"
    runs: RunFilter | None = None
    capacity: Capacity | None = None
    idle: Literal["keep", "share"] | None = None
    fallback: Literal["even", "idle", "unallocated"] | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"project": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Pool:
        m = self.method
        if m in ("even", "fixed") and not self.targets:
            raise ValueError(f"@targets: method {m!r} needs at least one target")
        weights = [t.weight for t in self.targets]
        if m == "fixed":
            if any(w is None for w in weights):
                raise ValueError(f"@targets.{weights.index(None)}.weight: method 'fixed' needs a weight per target")
            total = sum(weights, Decimal(0))
            if total != 100:
                raise ValueError(f"@targets: fixed weights sum to {total}, not 100")
        elif any(w is not None for w in weights):
            raise ValueError(f"@targets: weights are only for method 'fixed', not {m!r}")
        usage = m == "proportional_usage"
        if usage and self.driver is None:
            raise ValueError("@driver: method 'proportional_usage' needs a driver (gpu_hours or one under drivers)")
        for name in ("driver", "capacity", "idle", "runs"):
            if not usage and getattr(self, name) is not None:
                raise ValueError(f"@{name}: only for method 'proportional_usage', not {m!r}")
        if not usage and self.grain != "project":
            raise ValueError(f"@grain: only for method 'proportional_usage', not {m!r}")
        if self.scope != "all" and m != "proportional_cost":
            raise ValueError(f"@scope: only for method 'proportional_cost', not {m!r}")
        if self.idle == "keep" and self.capacity is None:
            raise ValueError("@idle: 'keep' needs a capacity (per_day or from_consumed_quantity)")
        if usage and self.idle is None:
            self.idle = "keep" if self.capacity is not None else "share"
        if self.fallback is not None and m in ("even", "fixed"):
            raise ValueError(f"@fallback: method {m!r} always has its targets; no fallback applies")
        if self.fallback == "idle" and not usage:
            raise ValueError("@fallback: 'idle' is only for method 'proportional_usage'")
        if self.fallback == "even" and not self.targets:
            raise ValueError("@fallback: 'even' needs targets to share among")
        if self.fallback is None and m in ("proportional_cost", "proportional_usage"):
            self.fallback = "idle" if usage else "unallocated"
        return self
