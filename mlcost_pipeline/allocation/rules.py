"""The allocation rules file (YAML), validated with pydantic on load.

The rules decide who owns each charge: dimensions (project, model, ...) read from ordered tag keys, with value
normalization and aliases. The file's hash travels with every allocated row, so a changed rule is visible in the
data and in Dagster's code version of the allocation asset.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "rules" / "allocation.yaml"
DIMENSIONS = ("project", "model", "team", "environment", "cost_center")


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


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    dimensions: dict[str, Dimension]

    @field_validator("dimensions")
    @classmethod
    def _known_dimensions(cls, dims: dict[str, Dimension]) -> dict[str, Dimension]:
        unknown = sorted(set(dims) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown dimension(s) {unknown}; allowed: {list(DIMENSIONS)}")
        if "project" not in dims:
            raise ValueError("the 'project' dimension is required")
        return dims


class LoadedRules(BaseModel):
    rules: Rules
    source: str
    sha256: str


def normalize_value(value: str) -> str:
    """The Python twin of the SQL normalization (used for aliases and explain)."""
    return re.sub(r"[_\s]+", "-", value.strip().lower())


def load_rules(path: Path | str | None = None) -> LoadedRules:
    path = Path(path) if path else DEFAULT_RULES_PATH
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise RulesError(f"{path}: {where}: {err['msg']}") from exc
    return LoadedRules(rules=rules, source=str(path), sha256=hashlib.sha256(text.encode()).hexdigest())
