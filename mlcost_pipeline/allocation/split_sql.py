"""Largest-remainder splitting in DuckDB SQL: the pieces of a charge sum exactly to the charge.

Two steps, so that the per-charge work runs on narrow integer rows (a window over wide rows is ~10x slower):
1. `shares_ctes`, once per group of pieces sharing one weight vector (a pool's targets on one day, or the runs on
   one dedicated charge): piece number `pno` (by sort_key), the integer share
   p_i = round(weight_i / sum(weight) x 10^15), P = sum(p_i), and the piece's `ratio`: 1 (10^12 units) split by
   largest remainder, so ratios sum to exactly 1.
2. `largest_remainder_ctes`, per charge: in units of 10^-12, each piece gets floor(|units| x p_i / P) and the
   units left over (fewer than the number of pieces) go one each to the largest remainders, ties to the lower
   pno; the same for the converted amount. Per charge, sum(amount) = the charge and sum(amount_reporting) = the
   converted charge, exactly; a positive charge never gets a negative piece.
Weights are exact decimals, so sums do not depend on row order, and the result is the same on every run. The
integer arithmetic never needs more than 128 bits for any DECIMAL(38,12) charge (see currency.MACROS).
"""

from __future__ import annotations

_PARTS = 10**15


def shares_ctes(source: str, group: str, out: str) -> str:
    """`<out>`: the rows of `source` (columns qty, sort_key and the `group` columns) plus pno, p, ptotal, ratio."""
    return f"""{out}_p AS (
    SELECT *, CAST(row_number() OVER (PARTITION BY {group} ORDER BY sort_key) - 1 AS INTEGER) AS pno,
           CAST(round(CAST(qty AS DOUBLE) / CAST(sum(qty) OVER (PARTITION BY {group}) AS DOUBLE) * {_PARTS})
                AS HUGEINT) AS p
    FROM {source}
), {out}_t AS (
    SELECT *, sum(p) OVER (PARTITION BY {group}) AS ptotal,
           mlc_q(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY {group})) AS _q1,
           mlc_r(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY {group})) AS _m1
    FROM {out}_p
), {out} AS (
    SELECT * EXCLUDE (_q1, _m1),
           mlc_money(_q1 + CASE WHEN row_number() OVER (PARTITION BY {group} ORDER BY _m1 DESC, pno)
                                     <= 1000000000000 - sum(_q1) OVER (PARTITION BY {group}) THEN 1 ELSE 0 END)
               AS ratio
    FROM {out}_t
)"""


def largest_remainder_ctes(source: str, out: str) -> str:
    """`<out>(cid, src, wid, pno, a_units, r_units)` from narrow `source(cid, src, wid, pno, p, ptotal, ua, ur)`.

    ua / ur are the absolute units of the charge and of its converted amount; the outputs are absolute too.
    """
    return f"""{out}_q AS (
    SELECT cid, src, wid, pno, ua, ur,
           mlc_q(ua, p, ptotal) AS qa, mlc_r(ua, p, ptotal) AS ma,
           mlc_q(ur, p, ptotal) AS qr, mlc_r(ur, p, ptotal) AS mr
    FROM {source}
), {out}_k AS (
    SELECT cid, src, wid, pno, qa, qr,
           ua - sum(qa) OVER c AS da, ur - sum(qr) OVER c AS dr,
           row_number() OVER (PARTITION BY cid ORDER BY ma DESC, pno) AS ka,
           row_number() OVER (PARTITION BY cid ORDER BY mr DESC, pno) AS kr
    FROM {out}_q
    WINDOW c AS (PARTITION BY cid)
), {out} AS (
    SELECT cid, src, wid, pno, qa + CASE WHEN ka <= da THEN 1 ELSE 0 END AS a_units,
           qr + CASE WHEN kr <= dr THEN 1 ELSE 0 END AS r_units
    FROM {out}_k
)"""
