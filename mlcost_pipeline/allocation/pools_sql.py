"""Shared pools for the templates: which pool takes a charge (first match in file order); the pools as frames.

The selector of pool i becomes a list of conditions that charges.sql ANDs, whose values are parameters named
`pool{i}_*`; the pool index is `CASE WHEN <pool 0> THEN 0 WHEN <pool 1> THEN 1 ... END` (NULL: no pool, the
charge is direct).
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


_EXACT_FIELDS = (("providers", "ProviderName"), ("services", "ServiceName"),
                 ("service_categories", "ServiceCategory"), ("accounts", "SubAccountId"),
                 ("charge_categories", "ChargeCategory"))  # fmt: skip


def _conditions(i: int, s: Selector, tags: TagKeys) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Pool i's selector as conditions for charges.sql (ANDed, in order), and their `pool<i>_*` values."""
    conds: list[dict[str, object]] = []
    params: dict[str, object] = {}

    def add(kind: str, name: str | None = None, value: object = None, **extra: object) -> None:
        if name is not None:
            params[f"pool{i}_{name}"] = value
        conds.append({"kind": kind, "param": f"pool{i}_{name}" if name else None, **extra})

    for field, column in _EXACT_FIELDS:
        values = getattr(s, field)
        if values:
            add("in", field, list(values), column=column)
    if s.resource_groups:
        groups = [g.strip().lower() for g in s.resource_groups]
        add("in_lower", "resource_groups", groups, column="x_ResourceGroupName")
    if s.resource_id_regex:
        add("regex", "resource_id_regex", s.resource_id_regex, column="ResourceId")
    if s.unowned_only:
        add("unowned")
    for j, (key, values) in enumerate(s.tag_pairs()):
        # from the lower-cased Tags: keys match in any case, values compare lower-cased
        if "*" in values:
            add("tag_present", position=tags.position(key))
        else:
            add("tag_in", f"tag{j}_values", [x.strip().lower() for x in values], position=tags.position(key))
    return conds, params


def pool_conditions(rules: Rules, tags: TagKeys) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Each pool's id (validated: `[A-Za-z0-9_.:-]`) and selector conditions, in file order; their values."""
    pools, params = [], {}
    for i, pool in enumerate(rules.pools):
        conds, p = _conditions(i, pool.select, tags)
        pools.append({"id": pool.id, "conditions": conds})
        params |= p
    return pools, params


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

