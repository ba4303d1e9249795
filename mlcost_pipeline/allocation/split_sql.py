"""Largest-remainder splitting (sql/_split.sql) from Python: the pieces of a charge sum exactly to it.

The SQL and its reasoning live in the template; allocate.sql uses its macros directly. These wrappers give the
same CTEs to code that assembles its own statement (the split's arithmetic tests).
"""

from __future__ import annotations

from mlcost_pipeline.allocation.templates import macro


def shares_ctes(source: str, group: str, out: str) -> str:
    """`<out>`: the rows of `source` (columns qty, sort_key and the `group` columns) plus pno, p, ptotal, ratio."""
    return str(macro("_split.sql", "shares")(source, group, out))


def largest_remainder_ctes(source: str, out: str) -> str:
    """`<out>(cid, src, wid, pno, a_units, r_units)` from `source(cid, src, wid, pno, p, ptotal, ua, ur)`."""
    return str(macro("_split.sql", "largest_remainder")(source, out))
