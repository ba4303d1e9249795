"""Stage 1 of the allocation, once per charge: owner, reporting-currency value and pool of every charge in a window.

Source: core.focus_costs for [$start, $end). Output (materialized as a temp table, so the later steps, which read
it several times, never recompute the tag parsing): one row per charge with
- `cid` (the row's rowid: a compact key for the per-charge split), the charge's columns the rules can select on;
- `owner_<dimension>` from tags, else fallbacks, and `owner_rule` naming what gave the project;
- `charge_amount` (the cost basis), `charge_reporting` (converted once, exact), `fx_rate`, `fx_source`;
- `pool_idx`: the first pool whose selector matches (NULL: a direct charge), `run_tag`: a run id named by a tag.
Tags are parsed once per row, into a struct of the keys the rules read (dimensions_sql.TagKeys); each dimension's
raw value is read first and normalized in a second step, so no expression is evaluated twice.
"""

from __future__ import annotations

from mlcost_pipeline.allocation.currency import converted_sql
from mlcost_pipeline.allocation.dimensions_sql import (
    TagKeys,
    canonical_sql,
    dimension_params,
    first_tag_value_sql,
    owner_joins_sql,
    owner_select_sql,
    resource_id_index_sql,
    tag_entries_sql,
)
from mlcost_pipeline.allocation.pools_sql import pool_index_sql, selector_tag_keys
from mlcost_pipeline.allocation.rules import DIMENSIONS, LoadedRules
from mlcost_pipeline.allocation.run_pieces_sql import run_tag_sql

_ONE = "CAST(1 AS DECIMAL(38,12))"


def _tag_keys(rules) -> TagKeys:
    keys = [k for d, dim in rules.dimensions.items() if dim.normalize for k in dim.tag_keys]
    return TagKeys(keys + selector_tag_keys(rules) + rules.runs.direct_tag_keys)


def charge_stage_sql(loaded: LoadedRules, reporting: str) -> tuple[str, dict[str, object]]:
    """The SELECT of stage 1 and its parameters (including $start and $end)."""
    rules = loaded.rules
    tags = _tag_keys(rules)
    rid_idx, rid_params = resource_id_index_sql(rules)
    pool_idx, pool_params = pool_index_sql(rules, tags)
    basis = rules.cost_basis  # one of four FOCUS column names (a validated Literal), safe to name in SQL
    defined = {d: dim for d, dim in rules.dimensions.items()}
    as_tagged = [d for d, dim in defined.items() if not dim.normalize]  # original case: read from MAP entries
    raw = ",\n        ".join(
        f"{first_tag_value_sql(d) if d in as_tagged else tags.first_value(dim.tag_keys)} AS raw_{d}"
        for d, dim in defined.items()
    )
    canonical = ",\n        ".join(
        f"{canonical_sql(d, defined[d], f'raw_{d}')} AS tag_{d}" if d in defined
        else f"CAST(NULL AS VARCHAR) AS tag_{d}"
        for d in DIMENSIONS
    )  # fmt: skip
    parsed = ["json_transform(lower(f.Tags), $tag_struct) AS tg"] if tags.keys else ["NULL AS tg"]
    if as_tagged:
        parsed.append(f"{tag_entries_sql('f.Tags')} AS tag_entries")
    sql = f"""
WITH charges AS (
    SELECT f.rowid AS cid, f.x_LineId, f.x_ChargeDate AS day, f.BillingCurrency AS currency,
           f."{basis}" AS charge_amount, f.ProviderName, f.ServiceName, f.ServiceCategory, f.SubAccountId,
           f.ResourceId, f.x_ResourceGroupName, f.ChargeCategory, f.ChargePeriodStart, f.ChargePeriodEnd,
           f.ConsumedQuantity, f.ConsumedUnit, f.SkuId, f.x_SourceSystem, f.x_CurrencyConversionRate,
           {", ".join(parsed)}
    FROM core.focus_costs AS f
    WHERE f.x_ChargeDate >= $start AND f.x_ChargeDate < $end
), raw AS (
    SELECT *, {raw},
        {rid_idx} AS rid_idx, {run_tag_sql(rules, tags)} AS run_tag
    FROM charges
), tagged AS (
    SELECT * EXCLUDE ({", ".join(f"raw_{d}" for d in defined)}), {canonical}
    FROM raw
), owned AS (
    SELECT c.*, {owner_select_sql(rules)}
    FROM tagged AS c
    {owner_joins_sql()}
), rated AS (
    SELECT o.*,
        CASE WHEN o.currency = $reporting THEN 'same'
             WHEN $provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0 THEN 'provider'
             ELSE fx.fx_source END AS fx_source,
        CASE WHEN o.currency <> $reporting AND NOT ($provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0)
             THEN fx.fx_num ELSE {_ONE} END AS fx_num,
        CASE WHEN o.currency = $reporting THEN {_ONE}
             WHEN $provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0 THEN o.x_CurrencyConversionRate
             ELSE fx.fx_den END AS fx_den
    FROM owned AS o LEFT JOIN _mlc_fx AS fx ON fx.day = o.day AND fx.currency = o.currency
), pooled AS (
    SELECT * EXCLUDE (tg, {"tag_entries, " if as_tagged else ""}{", ".join(f"tag_{d}" for d in DIMENSIONS)}, rid_idx),
        {pool_idx} AS pool_idx
    FROM rated
)
-- The exact conversion costs 128-bit arithmetic: only rows in another currency pay for it.
SELECT * EXCLUDE (fx_num, fx_den), charge_amount AS charge_reporting, {_ONE} AS fx_rate
FROM pooled WHERE fx_source = 'same'
UNION ALL
SELECT * EXCLUDE (fx_num, fx_den), {converted_sql("charge_amount", "fx_num", "fx_den")} AS charge_reporting,
    {converted_sql(_ONE, "fx_num", "fx_den")} AS fx_rate
FROM pooled WHERE fx_source IS DISTINCT FROM 'same'
"""  # noqa: S608 (only our own column names are formatted in; rule values are bound)
    params: dict[str, object] = {
        "reporting": reporting,
        "provider_ok": rules.currency.use_provider_rates and reporting == "USD",
        **({"tag_struct": tags.spec()} if tags.keys else {}),
        **dimension_params(rules, tuple(defined), with_keys=tuple(as_tagged)),
        **rid_params,
        **pool_params,
    }
    return sql, params
