"""N AWS CUR 2.0 line items for one UTC day as Parquet (snappy), shaped like a Data Exports delivery.

The columns are CUR 2.0's fixed set with resources included (119 columns; names and types from the Data
Exports table dictionary: costs DOUBLE, rates VARCHAR, dates TIMESTAMP, `product`, `resource_tags`,
`cost_category`, `discount` and `tags` as MAP(VARCHAR, VARCHAR); a column a line has no value for is null, as
AWS writes it).
The rows model an account's day rather than repeating one line:
- 86% hourly lines of a resource population (24 lines a resource, tags constant per resource, a quarter
  untagged): on-demand EC2 and SageMaker usage, spot, RI-covered DiscountedUsage, Savings-Plan-covered usage
  with its SavingsPlanNegation line;
- 14% daily lines of daily-grain services (S3 storage and requests, CloudWatch, data transfer), one line per
  bucket and service, with an EdpDiscount line for one in 100 of them;
- a few monthly lines on the 1st (RIFee, SavingsPlanRecurringFee, Tax, an RI upfront Fee).
Amounts are exact decimals of up to 10 places written as doubles. Row groups of 122,880 rows.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time
from pathlib import Path

import duckdb

# The CUR 2.0 columns with resources included, in the export's order (Data Exports table dictionary), and the
# types AWS writes: costs DOUBLE, rates and counts VARCHAR, dates TIMESTAMP, the nested columns MAP.
_NAMES = """
bill_bill_type bill_billing_entity bill_billing_period_end_date bill_billing_period_start_date bill_invoice_id
bill_invoicing_entity bill_payer_account_id bill_payer_account_name cost_category discount
discount_bundled_discount discount_total_discount identity_line_item_id identity_time_interval
line_item_availability_zone line_item_blended_cost line_item_blended_rate line_item_currency_code
line_item_legal_entity line_item_line_item_description line_item_line_item_type line_item_net_unblended_cost
line_item_net_unblended_rate line_item_normalization_factor line_item_normalized_usage_amount
line_item_operation line_item_product_code line_item_resource_id line_item_tax_type line_item_unblended_cost
line_item_unblended_rate line_item_usage_account_id line_item_usage_account_name line_item_usage_amount
line_item_usage_end_date line_item_usage_start_date line_item_usage_type pricing_currency
pricing_lease_contract_length pricing_offering_class pricing_public_on_demand_cost
pricing_public_on_demand_rate
pricing_purchase_option pricing_rate_code pricing_rate_id pricing_term pricing_unit product product_comment
product_fee_code product_fee_description product_from_location product_from_location_type
product_from_region_code product_instance_family product_instance_type product_instancesku product_location
product_location_type product_operation product_pricing_unit product_product_family product_region_code
product_servicecode product_sku product_to_location product_to_location_type product_to_region_code
product_usagetype reservation_amortized_upfront_cost_for_usage
reservation_amortized_upfront_fee_for_billing_period
reservation_availability_zone reservation_effective_cost reservation_end_time reservation_modification_status
reservation_net_amortized_upfront_cost_for_usage reservation_net_amortized_upfront_fee_for_billing_period
reservation_net_effective_cost reservation_net_recurring_fee_for_usage
reservation_net_unused_amortized_upfront_fee_for_billing_period reservation_net_unused_recurring_fee
reservation_net_upfront_value reservation_normalized_units_per_reservation reservation_number_of_reservations
reservation_recurring_fee_for_usage reservation_reservation_a_r_n reservation_start_time
reservation_subscription_id reservation_total_reserved_normalized_units reservation_total_reserved_units
reservation_units_per_reservation reservation_unused_amortized_upfront_fee_for_billing_period
reservation_unused_normalized_unit_quantity reservation_unused_quantity reservation_unused_recurring_fee
reservation_upfront_value resource_tags savings_plan_amortized_upfront_commitment_for_billing_period
savings_plan_end_time savings_plan_instance_type_family
savings_plan_net_amortized_upfront_commitment_for_billing_period
savings_plan_net_recurring_commitment_for_billing_period savings_plan_net_savings_plan_effective_cost
savings_plan_offering_type savings_plan_payment_option savings_plan_purchase_term
savings_plan_recurring_commitment_for_billing_period savings_plan_region savings_plan_savings_plan_a_r_n
savings_plan_savings_plan_effective_cost savings_plan_savings_plan_rate savings_plan_start_time
savings_plan_total_commitment_to_date savings_plan_used_commitment tags
capacity_reservation_capacity_reservation_arn capacity_reservation_capacity_reservation_status
capacity_reservation_capacity_reservation_type line_item_iam_principal
""".split()
_MAPS = {"cost_category", "discount", "product", "resource_tags", "tags"}
_TIMES = {"bill_billing_period_end_date", "bill_billing_period_start_date", "line_item_usage_end_date",
          "line_item_usage_start_date"}
_STRING_NUMBERS = {"reservation_normalized_units_per_reservation", "reservation_number_of_reservations",
                   "reservation_total_reserved_normalized_units", "reservation_total_reserved_units",
                   "reservation_units_per_reservation"}
_DOUBLE_WORDS = ("_cost", "_discount", "_factor", "_amount", "_fee", "_value", "_quantity", "_period",
                 "_for_usage", "_commitment", "_to_date", "savings_plan_rate")


def _type(name: str) -> str:
    if name in _MAPS:
        return "MAP(VARCHAR, VARCHAR)"
    if name in _TIMES:
        return "TIMESTAMP"
    if name not in _STRING_NUMBERS and name.endswith(_DOUBLE_WORDS) and not name.endswith("_rate"):
        return "DOUBLE"
    return "VARCHAR"


COLUMNS = {name: _type(name) for name in _NAMES}

# Per line: `kind` (0-9 hourly mix, 10+ daily services, 20+ monthly), `r` the resource, `h` the hour.
_BASE = """
SELECT i, h, r, kind,
    CASE kind WHEN 5 THEN 'DiscountedUsage' WHEN 6 THEN 'DiscountedUsage'
        WHEN 7 THEN 'SavingsPlanCoveredUsage' WHEN 8 THEN 'SavingsPlanNegation' WHEN 14 THEN 'EdpDiscount'
        WHEN 20 THEN 'RIFee' WHEN 21 THEN 'SavingsPlanRecurringFee' WHEN 22 THEN 'Tax' WHEN 23 THEN 'Fee'
        ELSE 'Usage' END AS typ,
    CASE WHEN kind IN (3, 4) THEN 'AmazonSageMaker' WHEN kind IN (10, 11, 14) THEN 'AmazonS3'
        WHEN kind = 12 THEN 'AmazonCloudWatch' WHEN kind = 13 THEN 'AWSDataTransfer' WHEN kind = 21
        THEN 'ComputeSavingsPlans' ELSE 'AmazonEC2' END AS code,
    CASE WHEN kind < 10 THEN $day + to_hours(h) WHEN kind < 20 THEN $day ELSE $month END AS t0,
    CASE WHEN kind < 10 THEN $day + to_hours(h + 1) WHEN kind < 20 THEN $day + INTERVAL 1 DAY
        ELSE $month + INTERVAL 1 MONTH END AS t1,
    -- cents and sub-cent rates: exact decimals up to 10 places
    round(CASE WHEN kind < 10 THEN 0.0104 * (1 + r % 64)
               WHEN kind < 20 THEN 0.0000004 * (1 + (i * 7919) % 100000)
               ELSE 10.0 * (1 + r % 97) END, 10) AS amount,
    '2' || lpad(CAST(100000000000 + r % 40 AS VARCHAR), 11, '0') AS account
FROM (
    SELECT i,
        CASE WHEN i < $hourly THEN i % 24 ELSE 0 END AS h,
        -- a SavingsPlanNegation line (kind 8) negates the covered line of the resource before it (kind 7)
        CASE WHEN i < $hourly THEN i // 24 - CASE WHEN (i // 24) % 10 = 8 THEN 1 ELSE 0 END ELSE i END AS r,
        CASE WHEN i >= $n - $monthly THEN 20 + i % 4
             WHEN i >= $hourly THEN CASE WHEN i % 4 = 0 AND i % 50 = 0 THEN 14 ELSE 10 + i % 4 END
             ELSE (i // 24) % 10 END AS kind
    FROM range($n) t(i)
)"""

_TYPED = {
    "bill_bill_type": "CASE WHEN typ = 'Fee' THEN 'Purchase' ELSE 'Anniversary' END",
    "bill_billing_entity": "'AWS'",
    "bill_billing_period_start_date": "$month",
    "bill_billing_period_end_date": "$month + INTERVAL 1 MONTH",
    "bill_invoicing_entity": "'Amazon Web Services, Inc.'",
    "bill_payer_account_id": "'111111111111'",
    "bill_payer_account_name": "'org-payer'",
    "identity_line_item_id": "md5(CAST(i AS VARCHAR))",
    "identity_time_interval": ("strftime(t0, '%Y-%m-%dT%H:%M:%SZ') || '/' || "
                               "strftime(t1, '%Y-%m-%dT%H:%M:%SZ')"),
    "line_item_availability_zone": ("CASE WHEN kind < 10 "
                                    "THEN 'us-east-1' || chr(CAST(97 + r % 3 AS INTEGER)) END"),
    "line_item_currency_code": "'USD'",
    "line_item_legal_entity": "'Amazon Web Services, Inc.'",
    "line_item_line_item_description": "typ || ' ' || code || ' line ' || CAST(kind AS VARCHAR)",
    "line_item_line_item_type": "typ",
    "line_item_operation": ("CASE WHEN code = 'AmazonEC2' THEN 'RunInstances' "
                            "ELSE 'Op' || CAST(kind AS VARCHAR) END"),
    "line_item_product_code": "code",
    # one daily line per (bucket, service): the export's natural key stays unique, as AWS's is
    "line_item_resource_id": ("CASE WHEN kind < 10 THEN 'i-' || lpad(printf('%x', r), 12, '0') "
                              "WHEN kind < 20 THEN 'bucket-' || CAST(r // 4 AS VARCHAR) END"),
    "line_item_unblended_cost": ("CASE WHEN typ = 'DiscountedUsage' THEN 0 "
                                 "WHEN typ IN ('SavingsPlanNegation', 'EdpDiscount') THEN -amount "
                                 "ELSE amount END"),
    "line_item_blended_cost": "CASE WHEN typ = 'DiscountedUsage' THEN 0 ELSE amount END",
    "line_item_unblended_rate": "CAST(CASE WHEN typ = 'DiscountedUsage' THEN 0 ELSE amount END AS VARCHAR)",
    "line_item_usage_account_id": "account",
    "line_item_usage_account_name": "'team-' || CAST(r % 40 AS VARCHAR)",
    "line_item_usage_amount": "1.0",
    "line_item_usage_start_date": "t0",
    "line_item_usage_end_date": "t1",
    "line_item_usage_type": ("CASE kind WHEN 9 THEN 'USE1-SpotUsage:p4d.24xlarge' "
                             "WHEN 3 THEN 'USE1-ml.g5.xlarge' WHEN 4 THEN 'USE1-ml.g5.xlarge' "
                             "WHEN 10 THEN 'TimedStorage-ByteHrs' "
                             "WHEN 11 THEN 'Requests-Tier1' WHEN 12 THEN 'CW:MetricMonitorUsage' "
                             "WHEN 13 THEN 'USE1-DataTransfer-Out-Bytes' WHEN 14 THEN 'TimedStorage-ByteHrs' "
                             "ELSE 'USE1-BoxUsage:m5.large' END"),
    "pricing_public_on_demand_cost": "CASE WHEN kind < 20 AND typ <> 'EdpDiscount' THEN amount END",
    "pricing_public_on_demand_rate": ("CASE WHEN kind < 20 AND typ <> 'EdpDiscount' "
                                      "THEN CAST(amount AS VARCHAR) END"),
    "pricing_term": "CASE WHEN typ = 'DiscountedUsage' THEN 'Reserved' WHEN kind < 20 THEN 'OnDemand' END",
    "pricing_unit": "CASE WHEN kind < 10 THEN 'Hrs' WHEN kind = 10 THEN 'GB-Mo' ELSE 'Requests' END",
    "pricing_rate_code": "'RATE' || CAST(kind AS VARCHAR) || '.JRTCKXETXF'",
    "product": ("map_from_entries([{'key': 'product_name', 'value': CASE code "
                "WHEN 'AmazonEC2' THEN 'Amazon Elastic Compute Cloud' "
                "WHEN 'AmazonS3' THEN 'Amazon Simple Storage Service' "
                "WHEN 'AmazonSageMaker' THEN 'Amazon SageMaker' ELSE code END}, "
                "{'key': 'region', 'value': 'us-east-1'}, {'key': 'servicecode', 'value': code}])"),
    "product_instance_type": "CASE WHEN code = 'AmazonEC2' AND kind < 10 THEN 'm5.large' END",
    "product_location": "'US East (N. Virginia)'",
    "product_product_family": "CASE WHEN kind < 10 THEN 'Compute Instance' ELSE 'Storage' END",
    "product_region_code": "'us-east-1'",
    "product_servicecode": "code",
    "product_sku": "'SKU' || CAST(kind AS VARCHAR)",
    "reservation_reservation_a_r_n": ("CASE WHEN typ IN ('DiscountedUsage', 'RIFee', 'Fee') THEN "
                                      "'arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-' || "
                                      "CAST(r % 8 AS VARCHAR) END"),
    "reservation_effective_cost": "CASE WHEN typ = 'DiscountedUsage' THEN round(amount * 0.6, 10) END",
    "reservation_unused_amortized_upfront_fee_for_billing_period": ("CASE WHEN typ = 'RIFee' "
                                                                    "THEN round(amount / 8, 10) END"),
    "reservation_unused_recurring_fee": "CASE WHEN typ = 'RIFee' THEN round(amount / 16, 10) END",
    "savings_plan_savings_plan_a_r_n": ("CASE WHEN kind IN (7, 8, 21) THEN "
                                        "'arn:aws:savingsplans::111111111111:savingsplan/sp-' || "
                                        "CAST(r % 4 AS VARCHAR) END"),
    "savings_plan_savings_plan_effective_cost": "CASE WHEN kind = 7 THEN round(amount * 0.72, 10) END",
    "savings_plan_total_commitment_to_date": "CASE WHEN kind = 21 THEN amount END",
    "savings_plan_used_commitment": "CASE WHEN kind = 21 THEN round(amount * 0.9, 10) END",
    # a quarter of resources untagged; tags constant per resource, as AWS writes them (user_<key>)
    "resource_tags": ("CASE WHEN r % 4 = 3 THEN map() ELSE map_from_entries(["
                      "{'key': 'user_project', 'value': 'proj-' || CAST(r % 8 AS VARCHAR)}, "
                      "{'key': 'user_team', 'value': 'team-' || CAST(r % 5 AS VARCHAR)}]) END"),
    "cost_category": "map()",
    "discount": "map()",
    "tags": "map()",
}


def generate(n_rows: int, day: date, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    monthly = max(4, n_rows // 250_000)
    hourly = (n_rows * 86 // 100) // 24 * 24
    exprs = [f"CAST({_TYPED.get(c, 'NULL')} AS {t}) AS {c}" for c, t in COLUMNS.items()]
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '2GB'")
        start = datetime.combine(day, time())
        con.execute(
            f"COPY (SELECT {', '.join(exprs)} FROM ({_BASE})) "  # noqa: S608 (identifiers only)
            f"TO '{out}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880)",
            {"n": n_rows, "hourly": hourly, "monthly": monthly, "day": start,
             "month": datetime.combine(day.replace(day=1), time())},
        )
    finally:
        con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--day", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(generate(args.rows, args.day, args.out))


if __name__ == "__main__":
    main()
