{#- The view {{ schema }}.allocated_costs: one row per (x_LineId, piece), each line of {{ focus }} split exactly as
    its cost cell was (DESIGN.md §5: a line's allocation is its cell's pieces at the line's amount).

    A line finds its cell by (day, cell_key) and, for a run-owned resource's cell, its charge period
    (_cell_key.sql); it takes every piece of the cell with the piece's integer weight p of ptotal and splits its
    own cost basis by largest remainder in units of 10^-12 (the same arithmetic, tie-break and sign rule as the
    allocation's _split.sql), and its converted amount the same way after converting it with the cell's
    fx_num / fx_den. So each line's pieces sum exactly to the line, ratios are the cell's, and every line gets
    exactly the pieces the line-grain allocation gave it. A cell whose cost is not split (one piece) or that has
    one line sums exactly to its lines; lines in another currency than the reporting one are cells of their own
    (cells.sql), so each is converted once, as a line. Only a cell of several lines split into several pieces
    (a shared pool's hourly rows) can differ: its lines' pieces sum to the cell's piece within (lines - 1)
    units of 10^-12, because each line rounds its split once; the marts read the cell pieces.

    The arithmetic is written out (no macros): a view is read from other connections, where the allocation's
    TEMP macros do not exist. Rules-independent: the cost basis comes from each piece. Context: schema, focus,
    key (cells_schema.CELL_KEY), columns (core.allocated_costs, in order). -#}
{% from "_cell_key.sql" import cell_key %}
{% macro units(x) %}(CAST(trunc({{ x }}) AS HUGEINT) * 1000000000000 + CAST(({{ x }} - trunc({{ x }})) * 1000000000000 AS HUGEINT)){% endmacro %}
{% macro money(u) %}CAST(CAST({{ u }} AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12)) AS DECIMAL(38,12)){% endmacro %}
{% macro q(a, n, d) %}(({{ a }} // {{ d }}) * {{ n }} + (({{ a }} % {{ d }}) * {{ n }}) // {{ d }}){% endmacro %}
{% macro r(a, n, d) %}((({{ a }} % {{ d }}) * {{ n }}) % {{ d }}){% endmacro %}
CREATE OR REPLACE VIEW {{ schema }}.allocated_costs AS
WITH lines AS (
    SELECT x_LineId, x_ChargeDate, ChargePeriodStart, ChargePeriodEnd, BilledCost, EffectiveCost, ListCost,
           ContractedCost, {{ cell_key(key) }} AS cell_key
    FROM {{ focus }}
), line_cells AS (
    SELECT l.*, c.cid
    FROM lines AS l JOIN {{ schema }}.cost_cells AS c
        ON c.x_ChargeDate = l.x_ChargeDate AND c.cell_key = l.cell_key
       AND (c.x_LineId IS NULL OR c.x_LineId = l.x_LineId)
       AND (c.ChargePeriodStart IS NULL
            OR (c.ChargePeriodStart = l.ChargePeriodStart AND c.ChargePeriodEnd = l.ChargePeriodEnd))
), pieces AS (
    SELECT *, {{ units("_line_amount") }} AS _line_units
    FROM (SELECT lc.x_LineId, a.*,
                 CASE a.cost_basis WHEN 'EffectiveCost' THEN lc.EffectiveCost WHEN 'BilledCost' THEN lc.BilledCost
                                   WHEN 'ListCost' THEN lc.ListCost ELSE lc.ContractedCost END AS _line_amount
          FROM line_cells AS lc
          JOIN {{ schema }}.allocated_cells AS a ON a.charge_date = lc.x_ChargeDate AND a.cid = lc.cid)
), converted AS (
    SELECT *, CASE WHEN fx_source = 'same' THEN _line_units ELSE sign(_line_units) * (_fx_q + CASE
                   WHEN 2 * _fx_r > _fx_d OR (2 * _fx_r = _fx_d AND _fx_q % 2 = 1) THEN 1 ELSE 0 END) END
                   AS _line_reporting
    FROM (SELECT *, {{ q("abs(_line_units)", "_fx_n", "_fx_d") }} AS _fx_q, {{ r("abs(_line_units)", "_fx_n", "_fx_d") }} AS _fx_r
          FROM (SELECT *, {{ units("fx_num") }} AS _fx_n, {{ units("fx_den") }} AS _fx_d FROM pieces))
), split AS (
    SELECT *, {{ q("abs(_line_units)", "p", "ptotal") }} AS _qa, {{ r("abs(_line_units)", "p", "ptotal") }} AS _ma,
              {{ q("abs(_line_reporting)", "p", "ptotal") }} AS _qr, {{ r("abs(_line_reporting)", "p", "ptotal") }} AS _mr
    FROM converted
), ranked AS (
    SELECT *, abs(_line_units) - sum(_qa) OVER l AS _da, abs(_line_reporting) - sum(_qr) OVER l AS _dr,
           row_number() OVER (PARTITION BY x_LineId ORDER BY _ma DESC, piece) AS _ka,
           row_number() OVER (PARTITION BY x_LineId ORDER BY _mr DESC, piece) AS _kr
    FROM split
    WINDOW l AS (PARTITION BY x_LineId)
)
SELECT
{% for c in columns %}
{% if c == "amount" %}
    {{ money("sign(_line_units) * (_qa + CASE WHEN _ka <= _da THEN 1 ELSE 0 END)") }} AS amount{{ "," if not loop.last }}
{% elif c == "amount_reporting" %}
    {{ money("sign(_line_reporting) * (_qr + CASE WHEN _kr <= _dr THEN 1 ELSE 0 END)") }} AS amount_reporting{{ "," if not loop.last }}
{% else %}
    "{{ c }}"{{ "," if not loop.last }}
{% endif %}
{% endfor %}
FROM ranked
