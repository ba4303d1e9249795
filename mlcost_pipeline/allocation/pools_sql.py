"""Shared pools in SQL: which pool takes a charge (first match in file order), and the pools' settings as frames.

The selector of pool i becomes one boolean SQL expression whose values are parameters named `pool{i}_*`; the
pool index is `CASE WHEN <pool 0> THEN 0 WHEN <pool 1> THEN 1 ... END` (NULL: no pool, the charge is direct).
Tag keys and values, provider, service, account and resource-group names match case-insensitively for tags
and resource groups, exactly otherwise (they are the provider's canonical names).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import polars as pl

from mlcost_pipeline.allocation.dimensions_sql import TagKeys
from mlcost_pipeline.allocation.rules import DIMENSIONS, Rules
from mlcost_pipeline.allocation.rules_pools import Pool, Selector
from mlcost_pipeline.normalize.focus_schema import MONEY

POOLS_SCHEMA = {
    "pool_idx": pl.Int32, "pool_id": pl.String, "method": pl.String, "driver": pl.String, "unit": pl.String,
    "grain": pl.String, "idle": pl.String, "fallback": pl.String, "scope": pl.String, "has_targets": pl.Boolean,
    "cap_per_day": MONEY, "cap_from_cq": pl.Boolean, "cap_skus": pl.List(pl.String), "cap_unit": pl.String,
    "cap_num": MONEY, "cap_den": MONEY, "run_cluster": pl.String, "run_instance_regex": pl.String,
}  # fmt: skip
TARGETS_SCHEMA = {"pool_idx": pl.Int32, "target_no": pl.Int32, **{d: pl.String for d in DIMENSIONS},
                  "weight": MONEY}  # fmt: skip
GPU_HOURS_UNIT = "GPU-hours"


def selector_tag_keys(rules: Rules) -> list[str]:
    return [key for pool in rules.pools for key, _ in pool.select.tag_pairs()]


def _selector_sql(i: int, s: Selector, tags: TagKeys) -> tuple[str, dict[str, object]]:
    conds, params = [], {}

    def bind(name: str, value: object) -> str:
        params[f"pool{i}_{name}"] = value
        return f"$pool{i}_{name}"

    for field, column in (("providers", "ProviderName"), ("services", "ServiceName"),
                          ("service_categories", "ServiceCategory"), ("accounts", "SubAccountId"),
                          ("charge_categories", "ChargeCategory")):  # fmt: skip
        values = getattr(s, field)
        if values:
            conds.append(f"list_contains({bind(field, list(values))}, {column})")
    if s.resource_groups:
        rgs = bind("resource_groups", [g.strip().lower() for g in s.resource_groups])
        conds.append(f"list_contains({rgs}, lower(x_ResourceGroupName))")
    if s.resource_id_regex:
        conds.append(f"regexp_matches(ResourceId, {bind('resource_id_regex', s.resource_id_regex)})")
    if s.unowned_only:
        conds.append("owner_project IS NULL")
    for j, (key, values) in enumerate(s.tag_pairs()):
        value = tags.value(key)  # from the lower-cased Tags: keys match in any case, values compare lower-cased
        if "*" in values:
            conds.append(f"{value} IS NOT NULL")
        else:
            conds.append(f"list_contains({bind(f'tag{j}_values', [x.strip().lower() for x in values])}, trim({value}))")
    # DuckDB evaluates AND left to right on the rows still selected, so the cheap tests go first; a NULL is false.
    return " AND ".join(f"({c})" for c in conds), params


def pool_index_sql(rules: Rules, tags: TagKeys) -> tuple[str, dict[str, object]]:
    """`CASE ... END` giving the first matching pool's index, and its parameters."""
    if not rules.pools:
        return "CAST(NULL AS INTEGER)", {}
    whens, params = [], {}
    for i, pool in enumerate(rules.pools):
        cond, p = _selector_sql(i, pool.select, tags)
        whens.append(f"WHEN {cond} THEN {i}")
        params |= p
    return "CASE " + " ".join(whens) + " END", params


def _unit(pool: Pool, rules: Rules, reporting: str) -> str | None:
    if pool.method == "proportional_cost":
        return reporting
    if pool.method != "proportional_usage":
        return None
    return GPU_HOURS_UNIT if pool.driver == "gpu_hours" else rules.drivers[pool.driver].unit


def pool_frames(rules: Rules, reporting: str) -> dict[str, pl.DataFrame]:
    """`_mlc_pools` (one row per pool) and `_mlc_targets` (one row per listed target; even pools weigh 1)."""
    pools, targets = [], []
    for i, p in enumerate(rules.pools):
        cq = p.capacity.from_consumed_quantity if p.capacity else None
        per_unit = cq.fraction() if cq else Fraction(1)
        pools.append({
            "pool_idx": i, "pool_id": p.id, "method": p.method, "driver": p.driver, "unit": _unit(p, rules, reporting),
            "grain": p.grain, "idle": p.idle, "fallback": p.fallback, "scope": p.scope, "has_targets": bool(p.targets),
            "cap_per_day": p.capacity.per_day if p.capacity else None, "cap_from_cq": cq is not None,
            "cap_skus": list(cq.sku_ids) if cq else [], "cap_unit": cq.consumed_unit if cq else None,
            "cap_num": per_unit.numerator, "cap_den": per_unit.denominator,
            "run_cluster": p.runs.cluster if p.runs else None,
            "run_instance_regex": p.runs.instance_type_regex if p.runs else None,
        })  # fmt: skip
        for j, t in enumerate(p.targets):
            values = {d: (rules.dimensions[d].canonical(v) if d in rules.dimensions else v)
                      for d, v in t.dimension_values().items()}  # fmt: skip
            targets.append({"pool_idx": i, "target_no": j, **dict.fromkeys(DIMENSIONS), **values,
                            "weight": t.weight if p.method == "fixed" else Decimal(1)})  # fmt: skip
    return {
        "_mlc_pools": pl.DataFrame(pools, schema=POOLS_SCHEMA) if pools else pl.DataFrame(schema=POOLS_SCHEMA),
        "_mlc_targets": pl.DataFrame(targets, schema=TARGETS_SCHEMA) if targets
        else pl.DataFrame(schema=TARGETS_SCHEMA),
    }

