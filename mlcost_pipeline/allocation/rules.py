"""The allocation rules file (YAML), validated with pydantic on load (DESIGN.md §4; every field: docs/allocation.md).

The rules decide who owns each charge: dimensions (project, model, ...) read from ordered tag keys with value
normalization and aliases, fallbacks when no tag names an owner, shared pools that split cost among targets, usage
drivers, the FX rates file and the run rate card. A bad file fails with one line naming the file, the field path
and what is wrong. The file's hash travels with every allocated row; the hash of the file plus every file it
names (rates, driver CSVs) is the allocation asset's code version, so a change shows as stale in Dagster.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlcost_pipeline.allocation.rules_inputs import CurrencyRules, DriverSource, RunCostRules
from mlcost_pipeline.allocation.rules_pools import BUILTIN_DRIVERS, Fallbacks, Pool
from mlcost_pipeline.config_files import read_yaml_mapping, validation_message

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "rules" / "allocation.yaml"
DIMENSIONS = ("project", "model", "team", "environment", "cost_center")
COST_BASES = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")


class RulesError(ValueError):
    """A one-line message naming the file, the field path and what is wrong."""


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag_keys: list[str] = Field(min_length=1, description="Tag keys in order of preference; first present wins.")
    normalize: bool = Field(True, description="Trim, lower-case, turn '_' and spaces into '-'.")
    aliases: dict[str, str] = Field(default_factory=dict, description="Normalized value -> canonical value.")

    @field_validator("tag_keys")
    @classmethod
    def _lower_keys(cls, keys: list[str]) -> list[str]:
        return [k.strip().lower() for k in keys]

    @model_validator(mode="after")
    def _normalized_aliases(self) -> Dimension:
        # An alias written as it appears in a tag ("churn_pred") must match the value after normalization.
        if self.normalize:
            self.aliases = {normalize_value(k): v for k, v in self.aliases.items()}
        return self

    def canonical(self, value: str | None) -> str | None:
        """The Python twin of the SQL dimension expression, for values outside tags (fallbacks, drivers)."""
        if value is None or not value.strip():
            return None
        v = normalize_value(value) if self.normalize else value
        return self.aliases.get(v, v)


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    cost_basis: Literal["EffectiveCost", "BilledCost", "ListCost", "ContractedCost"] = "EffectiveCost"
    dimensions: dict[str, Dimension]
    fallbacks: Fallbacks = Field(default_factory=Fallbacks)
    pools: list[Pool] = Field(default_factory=list)
    drivers: dict[str, DriverSource] = Field(default_factory=dict)
    currency: CurrencyRules = Field(default_factory=CurrencyRules)
    runs: RunCostRules = Field(default_factory=RunCostRules)

    @field_validator("dimensions")
    @classmethod
    def _known_dimensions(cls, dims: dict[str, Dimension]) -> dict[str, Dimension]:
        unknown = sorted(set(dims) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown dimension(s) {unknown}; allowed: {list(DIMENSIONS)}")
        if "project" not in dims:
            raise ValueError("the 'project' dimension is required")
        return dims

    @model_validator(mode="after")
    def _cross_references(self) -> Rules:
        # "@path: message" puts the error at that field (see config_files.validation_message), not at the top level.
        seen: dict[str, int] = {}
        for i, pool in enumerate(self.pools):
            if pool.id in seen:
                raise ValueError(f"@pools.{i}.id: duplicate pool id {pool.id!r} (first used by pools.{seen[pool.id]})")
            seen[pool.id] = i
            known = sorted(BUILTIN_DRIVERS | set(self.drivers))
            if pool.driver is not None and pool.driver not in known:
                raise ValueError(f"@pools.{i}.driver: unknown driver {pool.driver!r}; known: {known}")
            if pool.grain == "run" and pool.driver != "gpu_hours":
                raise ValueError(f"@pools.{i}.grain: grain 'run' needs driver 'gpu_hours' (runs are MLflow runs)")
            if pool.runs is not None and pool.driver != "gpu_hours":
                raise ValueError(f"@pools.{i}.runs: a run filter needs driver 'gpu_hours'")
            for j, target in enumerate(pool.targets):
                for dim in target.dimension_values():
                    if dim not in self.dimensions:
                        raise ValueError(f"@pools.{i}.targets.{j}.{dim}: dimension {dim!r} is not defined")
        for where, assign in self.fallbacks.assignments():
            for dim in assign:
                if dim not in self.dimensions:
                    raise ValueError(f"@fallbacks.{where}.{dim}: dimension {dim!r} is not defined")
        return self

    def dimension(self, name: str) -> Dimension | None:
        return self.dimensions.get(name)


@dataclass(frozen=True)
class LoadedRules:
    """A validated rules file with the inputs it names, read once: FX rates and driver CSV rows."""

    rules: Rules
    source: str
    sha256: str  # of the rules file: stored on every allocated row
    fingerprint: str = ""  # of the rules file and every file it names: the asset's code version
    fx_rates: list[tuple[date, str, str, Decimal]] = field(default_factory=list)  # day, from, to, rate
    fx_rates_file: str | None = None
    driver_rows: dict[str, list[tuple[date | None, str, str | None, Decimal]]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent


def normalize_value(value: str) -> str:
    """The Python twin of the SQL normalization (used for aliases, fallbacks, drivers and explain)."""
    return re.sub(r"[_\s]+", "-", value.strip().lower())


def load_rules(path: Path | str | None = None) -> LoadedRules:
    """Read, validate and resolve a rules file; every problem is a RulesError of one line."""
    from mlcost_pipeline.allocation.rules_inputs import read_driver_csv, read_fx_rates

    path = Path(path) if path else DEFAULT_RULES_PATH
    text, data = read_yaml_mapping(path, "rules", RulesError, "'dimensions'")
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(validation_message(path, exc)) from exc
    base = path.resolve().parent
    digest = hashlib.sha256(text.encode())
    rates_path = rules.currency.resolved_rates_file(base)
    rates: list[tuple[date, str, str, Decimal]] = []
    if rates_path is not None:
        rates = read_fx_rates(rates_path, f"{path}: currency.rates_file")
        digest.update(rates_path.read_bytes())
    driver_rows = {}
    for name, driver in sorted(rules.drivers.items()):
        if driver.csv is not None:
            csv_path = (base / driver.csv).resolve()
            driver_rows[name] = read_driver_csv(csv_path, f"{path}: drivers.{name}.csv")
            digest.update(csv_path.read_bytes())
    return LoadedRules(
        rules=rules,
        source=str(path),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        fingerprint=digest.hexdigest(),
        fx_rates=rates,
        fx_rates_file=str(rates_path) if rates_path else None,
        driver_rows=driver_rows,
    )
