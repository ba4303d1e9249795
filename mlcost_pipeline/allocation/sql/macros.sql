{#- Integer helpers, exact for every DECIMAL(38,12) value: floor(a x n / d) is computed as
    (a // d) x n + ((a mod d) x n) // d, so no intermediate exceeds the result or d x n (no 256-bit products).
    -#}
-- money <-> integer units of 10^-12 (whole part and fraction separately: a product with 10^12 would overflow)
CREATE OR REPLACE TEMP MACRO mlc_units(x) AS
    CAST(trunc(x) AS HUGEINT) * 1000000000000 + CAST((x - trunc(x)) * 1000000000000 AS HUGEINT);
CREATE OR REPLACE TEMP MACRO mlc_money(u) AS
    CAST(CAST(u AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12)) AS DECIMAL(38,12));
-- for a, n >= 0 and d > 0: the quotient and remainder of a x n / d
CREATE OR REPLACE TEMP MACRO mlc_q(a, n, d) AS (a // d) * n + ((a % d) * n) // d;
CREATE OR REPLACE TEMP MACRO mlc_r(a, n, d) AS ((a % d) * n) % d;
-- signed a: a x n / d rounded half-even
CREATE OR REPLACE TEMP MACRO mlc_muldiv(a, n, d) AS sign(a) * (mlc_q(abs(a), n, d) + CASE
    WHEN 2 * mlc_r(abs(a), n, d) > d OR (2 * mlc_r(abs(a), n, d) = d AND mlc_q(abs(a), n, d) % 2 = 1)
    THEN 1 ELSE 0 END);
CREATE OR REPLACE TEMP MACRO mlc_round_div(p, d) AS mlc_muldiv(p, 1, d);
