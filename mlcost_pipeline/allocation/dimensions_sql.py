"""Dimension values of a charge (or a run): template context and parameters; tags first, then the fallbacks.

Tags: the dimension's keys in order, matched case-insensitively, first non-blank value wins; the value is
trimmed, lower-cased, `_`/spaces become `-`, then the alias map folds spellings (SQL: sql/_dimensions.sql).
Fallbacks apply per dimension when no tag gives it, most specific first: a resource-id pattern (first matching
pattern in file order), the resource group (x_ResourceGroupName, case-insensitive), the account (SubAccountId:
AWS account, Azure subscription, GCP project id, OCI compartment). Every value from the rules is bound as a
parameter or sits in a registered frame.
"""

from __future__ import annotations

import json

import polars as pl

from mlcost_pipeline.allocation.rules import DIMENSIONS, Rules

FALLBACK_SCHEMA = {"key": pl.String, **{d: pl.String for d in DIMENSIONS}}
FALLBACK_FRAMES = ("_mlc_fb_rid", "_mlc_fb_rg", "_mlc_fb_acct")


class TagKeys:
    """The tag keys the rules read, parsed once per charge from the lower-cased Tags JSON into a struct.

    Parsing to a struct of known fields is ~5x faster than a MAP plus list lambdas, and lower-casing the text
    first makes the key match case-insensitive (the first of duplicate keys wins, as in the tags' order).
    Values come out lower-cased too, which is what normalization does anyway; a dimension with
    `normalize: false` keeps reading its original values from the MAP entries.
    """

    def __init__(self, keys: list[str]):
        self.keys = list(dict.fromkeys(k.lower() for k in keys))

    def spec(self) -> str:
        return json.dumps({k: "VARCHAR" for k in self.keys})

    def position(self, key: str) -> int:
        """The key's field in the struct, for `struct_extract_at` (1-based)."""
        return self.keys.index(key.lower()) + 1

    def positions(self, keys: list[str]) -> list[int]:
        return [self.position(k) for k in keys]


def dimension_context(rules: Rules, tags: TagKeys) -> dict[str, dict[str, object]]:
    """The defined dimensions in file order: does each normalize, its keys' positions in the tags struct."""
    return {
        name: {"normalize": dim.normalize, "positions": tags.positions(dim.tag_keys) if dim.normalize else []}
        for name, dim in rules.dimensions.items()
    }


def run_dimension_context(rules: Rules) -> dict[str, dict[str, object] | None]:
    """A run's project and model come from its own tags through the same rules (None: not defined)."""
    return {
        d: ({"normalize": dim.normalize} if (dim := rules.dimension(d)) else None)
        for d in ("project", "model")
    }


def dimension_params(rules: Rules) -> dict[str, object]:
    """Every defined dimension's parameters: `$dim_<name>_keys` (tag keys, lower-case) and its alias map."""
    params: dict[str, object] = {}
    for name, dim in rules.dimensions.items():
        params[f"dim_{name}_keys"] = dim.tag_keys
        params |= {f"dim_{name}_from": list(dim.aliases), f"dim_{name}_to": list(dim.aliases.values())}
    return params


def _canonical(rules: Rules, assign: dict[str, str]) -> dict[str, str | None]:
    return {d: (rules.dimensions[d].canonical(assign[d]) if d in assign else None) for d in DIMENSIONS}


def fallback_frames(rules: Rules) -> dict[str, pl.DataFrame]:
    """The three fallback maps as frames: resource-id patterns by index, resource groups, accounts."""
    fb = rules.fallbacks
    rows = {
        "_mlc_fb_rid": [
            {"key": str(i), **_canonical(rules, f.assign)} for i, f in enumerate(fb.resource_ids)
        ],
        "_mlc_fb_rg": [
            {"key": k.strip().lower(), **_canonical(rules, v)} for k, v in fb.resource_groups.items()
        ],
        "_mlc_fb_acct": [{"key": k.strip(), **_canonical(rules, v)} for k, v in fb.accounts.items()],
    }
    return {name: pl.DataFrame(r, schema=FALLBACK_SCHEMA) for name, r in rows.items()}


def fallback_pattern_params(rules: Rules) -> dict[str, object]:
    """`$fb_rid_<i>`: the resource-id patterns in file order (the index names the row of `_mlc_fb_rid`)."""
    return {f"fb_rid_{i}": f.pattern for i, f in enumerate(rules.fallbacks.resource_ids)}
