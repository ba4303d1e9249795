"""Stage 1 of the allocation (sql/charges.sql): its template context and parameters, from the validated rules.

The statement runs once per charge of the window (owner from tags or fallbacks, the value in the reporting
currency, the first pool whose selector matches) into the temp table `_mlc_valued`. Rendered: the cost
basis (one of four FOCUS column names, a validated Literal), which dimensions the rules define and how each
reads its tags (positions in the parsed tags struct, or the MAP entries when it keeps values as tagged), how
many resource-id fallbacks there are, and each pool's selector as a list of conditions. Bound: all else.
"""

from __future__ import annotations

from mlcost_pipeline.allocation.dimensions_sql import (
    TagKeys,
    dimension_context,
    dimension_params,
    fallback_pattern_params,
)
from mlcost_pipeline.allocation.pools_sql import pool_conditions, selector_tag_keys
from mlcost_pipeline.allocation.rules import DIMENSIONS, Rules


def tag_keys(rules: Rules) -> TagKeys:
    """The keys parsed into the tags struct: normalizing dimensions', pool selectors' and run tags' keys."""
    keys = [k for dim in rules.dimensions.values() if dim.normalize for k in dim.tag_keys]
    return TagKeys(keys + selector_tag_keys(rules) + rules.runs.direct_tag_keys)


def charge_context(rules: Rules, reporting: str) -> tuple[dict[str, object], dict[str, object]]:
    """The context of charges.sql and the rules' parameters it may bind ($start and $end are the window's)."""
    tags = tag_keys(rules)
    pools, pool_params = pool_conditions(rules, tags)
    context = {
        "basis": rules.cost_basis,
        "tag_struct": bool(tags.keys),
        "as_tagged": [d for d, dim in rules.dimensions.items() if not dim.normalize],
        "dimensions": dimension_context(rules, tags),
        "all_dimensions": DIMENSIONS,
        "fallback_patterns": len(rules.fallbacks.resource_ids),
        "run_tag_positions": tags.positions(rules.runs.direct_tag_keys),
        "pools": pools,
    }
    params: dict[str, object] = {
        "reporting": reporting,
        "provider_ok": rules.currency.use_provider_rates and reporting == "USD",
        **({"tag_struct": tags.spec()} if tags.keys else {}),
        **dimension_params(rules),
        **fallback_pattern_params(rules),
        **pool_params,
    }
    return context, params
