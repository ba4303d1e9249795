{#- Which (day, billing currency) of the window need a rate from the rates file: per pair, the lines
    without a usable provider rate, and all (currency.fx_plan makes `_mlc_fx` of it, or a CurrencyError). -#}
{% import "_input.sql" as input %}
WITH {{ input.cost_input() }}
SELECT x_ChargeDate, BillingCurrency,
       CAST(coalesce(sum(line_count) FILTER (WHERE NOT ($provider_ok AND coalesce(x_CurrencyConversionRate, 0) > 0)), 0)
            AS BIGINT),
       CAST(sum(line_count) AS BIGINT)
FROM cost_input GROUP BY ALL ORDER BY ALL
