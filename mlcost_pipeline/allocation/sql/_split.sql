{#- Largest-remainder splitting: the pieces of a charge sum exactly to the charge.

    Two steps, so that the per-charge work runs on narrow integer rows (a window over wide rows is ~10x
    slower):
    1. `shares`, once per group of pieces sharing one weight vector (a pool's targets on one day, or the runs
       on one dedicated charge): piece number `pno` (by sort_key), the integer share p_i = round(weight_i /
       sum(weight) x 10^15), P = sum(p_i), and the piece's `ratio`: 1 (10^12 units) split by largest
       remainder, so ratios sum to exactly 1.
    2. `largest_remainder`, per charge: in units of 10^-12, each piece gets floor(|units| x p_i / P) and the
       units left over (fewer than the number of pieces) go one each to the largest remainders, ties to the
       lower pno; the same for the converted amount. Per charge, sum(amount) = the charge and
       sum(amount_reporting) = the converted charge, exactly; a positive charge never gets a negative piece.
    Weights are exact decimals, so sums do not depend on row order, and the result is the same on every run.
    The integer arithmetic never needs more than 128 bits for any DECIMAL(38,12) charge (see macros.sql);
    charges below 4.6 million (nearly all) take a 64-bit path with the same results and no 128-bit division.
    -#}

{#- `<out>`: the rows of `source` (columns qty, sort_key and the `group` columns) + pno, p, ptotal, ratio. -#}
{% macro shares(source, group, out) -%}
{{ out }}_p AS (
    SELECT *, CAST(row_number() OVER (PARTITION BY {{ group }} ORDER BY sort_key) - 1 AS INTEGER) AS pno,
           CAST(round(CAST(qty AS DOUBLE) / CAST(sum(qty) OVER (PARTITION BY {{ group }}) AS DOUBLE)
                      * 1000000000000000) AS HUGEINT) AS p
    FROM {{ source }}
), {{ out }}_t AS (
    SELECT *, sum(p) OVER (PARTITION BY {{ group }}) AS ptotal,
           mlc_q(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY {{ group }})) AS _q1,
           mlc_r(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY {{ group }})) AS _m1
    FROM {{ out }}_p
), {{ out }} AS (
    SELECT * EXCLUDE (_q1, _m1),
           mlc_money(_q1 + CASE WHEN row_number() OVER (PARTITION BY {{ group }} ORDER BY _m1 DESC, pno)
                                     <= 1000000000000 - sum(_q1) OVER (PARTITION BY {{ group }}) THEN 1 ELSE 0 END)
               AS ratio
    FROM {{ out }}_t
)
{%- endmacro %}

{#- The fast path's bounds: amounts below 2^62 units (4.6 million in a 12-decimal money column) and at most
    2^53 parts (shares makes 10^15), so the quotient fits in 64 bits and the floating-point estimate is within
    3 of it. -#}
{% macro fast(a, b) -%}
{{ a }} < 4611686018427387904 AND {{ b }} < 4611686018427387904 AND ptotal < 9007199254740992 AND p <= ptotal
{%- endmacro %}

{#- k = floor(x / d) for an exact x known to lie in [-3d, 4d): comparisons only, no division. -#}
{% macro correction(x) -%}
CASE WHEN {{ x }} < 0 THEN CASE WHEN {{ x }} >= -d THEN -1 WHEN {{ x }} >= -2 * d THEN -2 ELSE -3 END
                WHEN {{ x }} >= d THEN CASE WHEN {{ x }} < 2 * d THEN 1 WHEN {{ x }} < 3 * d THEN 2 ELSE 3 END ELSE 0 END
{%- endmacro %}

{#- `<out>(cid, src, wid, pno, a_units, r_units)` from `source(cid, src, wid, pno, p, ptotal, ua, ur)`.

    ua / ur are the absolute units of the charge and of its converted amount; the outputs are absolute too.
    The quotient and remainder of units x p / P come from one of two exact paths with the same results:
    - 64-bit (nearly every charge): a // P and a mod P in BIGINT, floor((a mod P) x p / P) estimated in DOUBLE
      (off by at most 3), the exact remainder (a mod P) x p - estimate x P computed with 128-bit products (no
      128-bit division, which DuckDB does bit by bit), and the estimate corrected by comparisons;
    - 128-bit (amounts beyond the bounds above): the mlc_q / mlc_r macros. -#}
{% macro largest_remainder(source, out) -%}
{{ out }}_f AS (
    SELECT cid, src, wid, pno, ua, ur, CAST(p AS BIGINT) AS n, CAST(ptotal AS BIGINT) AS d,
           CAST(ua AS BIGINT) // CAST(ptotal AS BIGINT) AS wa, CAST(ua AS BIGINT) % CAST(ptotal AS BIGINT) AS ra,
           CAST(ur AS BIGINT) // CAST(ptotal AS BIGINT) AS wr, CAST(ur AS BIGINT) % CAST(ptotal AS BIGINT) AS rr
    FROM {{ source }} WHERE {{ fast("ua", "ur") }}
), {{ out }}_e AS (
    SELECT *, CAST(floor(CAST(ra AS DOUBLE) * CAST(n AS DOUBLE) / CAST(d AS DOUBLE)) AS BIGINT) AS ea,
              CAST(floor(CAST(rr AS DOUBLE) * CAST(n AS DOUBLE) / CAST(d AS DOUBLE)) AS BIGINT) AS er
    FROM {{ out }}_f
), {{ out }}_x AS (
    SELECT *, CAST(ra AS HUGEINT) * n - CAST(ea AS HUGEINT) * d AS xa,
              CAST(rr AS HUGEINT) * n - CAST(er AS HUGEINT) * d AS xr
    FROM {{ out }}_e
), {{ out }}_c AS (
    SELECT *, {{ correction("xa") }} AS ka,
              {{ correction("xr") }} AS kr
    FROM {{ out }}_x
), {{ out }}_q AS (
    SELECT cid, src, wid, pno, ua, ur,
           CAST(wa * n + ea + ka AS HUGEINT) AS qa, xa - ka * d AS ma,
           CAST(wr * n + er + kr AS HUGEINT) AS qr, xr - kr * d AS mr
    FROM {{ out }}_c
    UNION ALL
    SELECT cid, src, wid, pno, ua, ur,
           mlc_q(ua, p, ptotal) AS qa, mlc_r(ua, p, ptotal) AS ma,
           mlc_q(ur, p, ptotal) AS qr, mlc_r(ur, p, ptotal) AS mr
    FROM {{ source }} WHERE NOT ({{ fast("ua", "ur") }})
), {{ out }}_k AS (
    SELECT cid, src, wid, pno, qa, qr,
           ua - sum(qa) OVER c AS da, ur - sum(qr) OVER c AS dr,
           row_number() OVER (PARTITION BY cid ORDER BY ma DESC, pno) AS ka,
           row_number() OVER (PARTITION BY cid ORDER BY mr DESC, pno) AS kr
    FROM {{ out }}_q
    WINDOW c AS (PARTITION BY cid)
), {{ out }} AS (
    SELECT cid, src, wid, pno, qa + CASE WHEN ka <= da THEN 1 ELSE 0 END AS a_units,
           qr + CASE WHEN kr <= dr THEN 1 ELSE 0 END AS r_units
    FROM {{ out }}_k
)
{%- endmacro %}
