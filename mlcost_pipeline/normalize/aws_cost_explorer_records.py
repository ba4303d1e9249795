"""AWS Cost Explorer page-days -> `core.focus_costs` rows, one group at a time: the mapping as first written.

Source, grain, key and mapping choices as in normalize/aws_cost_explorer.py. This is the per-record path: the
columnar path (aws_cost_explorer_columns.py) hands it every batch it does not take (a shape it does not read, or
a bad record), so every error message is built here, naming the page, the result, the group and the field. The
equivalence tests (test_normalizer_paths.py) hold both paths to the same rows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import polars as pl

from mlcost_pipeline.normalize.focus_schema import (
    MONEY_LIMIT,
    MONEY_SCALE,
    POLARS_SCHEMA,
    NormalizationError,
    conform,
    line_ids,
    tags_json,
)

SOURCE = "aws_cost_explorer"
EXPORT_VERSION = "ce-2017-10-25"
PROVIDER = "AWS"
UNKNOWN_BILLING_ACCOUNT = "unknown"
_STEP = Decimal(1).scaleb(-MONEY_SCALE)
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Cost Explorer SERVICE values are display names; FinOps Foundation focus_converters
# (mapping_files/aws_category_mapping.csv @ c799bf96) maps product codes. Each entry: display name -> category,
# with the product code it was looked up by. Unknown services map to "Other".
SERVICE_CATEGORIES = {
    "Amazon Elastic Compute Cloud - Compute": "Compute",  # AmazonEC2
    "EC2 - Other": "Compute",  # AmazonEC2 (EBS, snapshots, NAT data)
    "Amazon SageMaker": "AI and Machine Learning",  # AmazonSageMaker
    "Amazon Bedrock": "AI and Machine Learning",  # AmazonBedrock
    "Amazon Simple Storage Service": "Storage",  # AmazonS3
    "Amazon Elastic File System": "Storage",  # AmazonEFS
    "AmazonCloudWatch": "Management and Governance",  # AmazonCloudWatch
    "Amazon Virtual Private Cloud": "Networking",  # AmazonVPC
    "AWS Data Transfer": "Networking",  # AWSDataTransfer
    "Amazon Elastic Load Balancing": "Networking",  # AWSELB
    "Amazon CloudFront": "Networking",  # AmazonCloudFront
    "Amazon Route 53": "Networking",  # AmazonRoute53
    "Amazon Elastic Container Service for Kubernetes": "Compute",  # AmazonEKS
    "Amazon Elastic Container Service": "Compute",  # AmazonECS
    "Amazon EC2 Container Registry (ECR)": "Compute",  # AmazonECR
    "AWS Lambda": "Compute",  # AWSLambda
    "Amazon Relational Database Service": "Databases",  # AmazonRDS
    "Amazon DynamoDB": "Databases",  # AmazonDynamoDB
    "AWS Glue": "Analytics",  # AWSGlue
    "Amazon Athena": "Analytics",  # AmazonAthena
    "AWS Key Management Service": "Security",  # awskms
    "Tax": "Other",
}
_COST_METRICS = ("UnblendedCost", "NetUnblendedCost", "AmortizedCost", "NetAmortizedCost", "BlendedCost")


def _fail(page: int, where: str, problem: str) -> NormalizationError:
    return NormalizationError(f"{SOURCE}: page {page}, {where}: {problem}")


def decimal_amount(value: object, page: int, where: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise _fail(page, where, f"not a number: {value!r}")
    try:
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation as exc:
        raise _fail(page, where, f"not a number: {value!r}") from exc
    if abs(number) >= MONEY_LIMIT:
        raise _fail(page, where, f"beyond the DECIMAL(38,12) range: {value!r}")
    try:
        return number.quantize(_STEP, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:
        raise _fail(page, where, f"not a number: {value!r}") from exc


def instant(text: object, page: int, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(page, where, f"not an ISO date: {text!r}") from exc
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def billing_month(moment: datetime) -> tuple[datetime, datetime]:
    first = datetime(moment.year, moment.month, 1)
    return first, (first + timedelta(days=32)).replace(day=1)


def filter_account(expression: object) -> str | None:
    """The single LINKED_ACCOUNT a request filter selects, looking through And; None if not exactly one."""
    if not isinstance(expression, dict):
        return None
    dims = expression.get("Dimensions") or {}
    if dims.get("Key") == "LINKED_ACCOUNT" and len(dims.get("Values") or []) == 1:
        return str(dims["Values"][0])
    for sub in expression.get("And") or []:
        found = filter_account(sub)
        if found:
            return found
    return None


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def constant_columns(ingested_at: datetime) -> dict[str, object]:
    return {
        "ProviderName": PROVIDER, "PublisherName": PROVIDER, "InvoiceIssuerName": PROVIDER,
        "ServiceProviderName": PROVIDER, "HostProviderName": PROVIDER,
        "x_SourceSystem": SOURCE, "x_ExportVersion": EXPORT_VERSION, "x_IngestedAt": naive_utc(ingested_at),
    }  # fmt: skip


def _group_row(page: int, where: str, group: dict, definitions: list[dict], context: dict) -> dict:
    keys = group.get("Keys")
    if not isinstance(keys, list) or len(keys) != len(definitions):
        raise _fail(page, where, f"field Keys {keys!r} does not match GroupDefinitions {definitions!r}")
    metrics = group.get("Metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise _fail(page, where, "field Metrics is missing")

    def amount(name: str) -> Decimal:
        metric = metrics[name]
        if not isinstance(metric, dict) or "Amount" not in metric:
            raise _fail(page, where, f"field Metrics.{name}.Amount is missing")
        return decimal_amount(metric["Amount"], page, f"{where}, field Metrics.{name}.Amount")

    billed_name = "NetUnblendedCost" if "NetUnblendedCost" in metrics else "UnblendedCost"
    if billed_name not in metrics:
        raise _fail(page, where, "field Metrics.UnblendedCost is missing (nor is NetUnblendedCost present)")
    effective_name = next((m for m in ("NetAmortizedCost", "AmortizedCost") if m in metrics), billed_name)
    units = {m: str((metrics[m] or {}).get("Unit")) for m in _COST_METRICS if m in metrics}
    currency = units[billed_name]
    if not _CURRENCY.match(currency) or len(set(units.values())) > 1:
        raise _fail(page, where, f"field Metrics.{billed_name}.Unit: not one ISO currency code: {units}")

    service, account, tags = None, context["account"], {}
    for definition, key in zip(definitions, keys, strict=True):
        kind, name = definition.get("Type"), definition.get("Key")
        if kind == "DIMENSION" and name == "SERVICE":
            service = key
        elif kind == "DIMENSION" and name == "LINKED_ACCOUNT":
            account = key
        elif kind == "TAG":
            value = str(key).split("$", 1)[1] if "$" in str(key) else str(key)
            if value:
                tags[name] = value
    if not service:
        raise _fail(page, where, "no SERVICE dimension in GroupDefinitions: ServiceName is mandatory")
    category = "Tax" if service == "Tax" else "Usage"
    usage = metrics.get("UsageQuantity") if category == "Usage" else None
    usage_unit = usage.get("Unit") if isinstance(usage, dict) else None
    billed = amount(billed_name)
    return {
        "BilledCost": billed,
        "EffectiveCost": amount(effective_name),
        "ListCost": amount("UnblendedCost") if "UnblendedCost" in metrics else billed,
        "ContractedCost": amount("UnblendedCost") if "UnblendedCost" in metrics else billed,
        "BillingCurrency": currency,
        "ChargeCategory": category,
        "ServiceName": service,
        "ServiceCategory": SERVICE_CATEGORIES.get(service, "Other"),
        "SubAccountId": account,
        "SubAccountName": context["names"].get(account),
        "Tags": tags_json(tags) if tags else None,
        "ConsumedQuantity": amount("UsageQuantity") if usage is not None else None,
        # CE sums UsageQuantity across units and then says "N/A"; a unit is kept only when CE names one.
        "ConsumedUnit": usage_unit if usage_unit not in (None, "", "N/A") else None,
        "_key": (context["start_text"], account, *keys),
    }


def _page_rows(page: int, payload: object) -> list[dict]:
    if not isinstance(payload, dict) or not isinstance(payload.get("response"), dict):
        raise _fail(page, "record", "field response is missing")
    request, response = payload.get("request") or {}, payload["response"]
    definitions = response.get("GroupDefinitions") or request.get("GroupBy") or []
    names = {
        str(a.get("Value")): (a.get("Attributes") or {}).get("description")
        for a in response.get("DimensionValueAttributes") or []
    }
    results = response.get("ResultsByTime")
    if not isinstance(results, list):
        raise _fail(page, "response", "field ResultsByTime is missing")
    rows = []
    for r, result in enumerate(results):
        where = f"ResultsByTime[{r}]"
        period = result.get("TimePeriod") or {}
        if "Start" not in period or "End" not in period:
            raise _fail(page, where, "field TimePeriod.Start/End is missing")
        start = instant(period["Start"], page, f"{where}, field TimePeriod.Start")
        end = instant(period["End"], page, f"{where}, field TimePeriod.End")
        if end <= start:
            raise _fail(
                page, where, f"field TimePeriod: End {period['End']} is not after Start {period['Start']}"
            )
        groups = result.get("Groups") or []
        if not groups and any(result.get("Total") or {}):
            raise _fail(page, where, "field Total without Groups: ungrouped queries are not supported")
        context = {"account": filter_account(request.get("Filter")), "names": names,
                   "start_text": str(period["Start"])}  # fmt: skip
        billing_start, billing_end = billing_month(start)
        for g, group in enumerate(groups):
            row = _group_row(page, f"{where}, Groups[{g}]", group, definitions, context)
            row.update(ChargePeriodStart=start, ChargePeriodEnd=end, BillingPeriodStart=billing_start,
                       BillingPeriodEnd=billing_end, x_ChargeDate=start.date(),
                       x_Estimated=result.get("Estimated"),
                       BillingAccountId=payload.get("billing_account_id"))  # fmt: skip
            rows.append(row)
    return rows


def normalize_records(
    payloads: list[dict], ingested_at: datetime, *, billing_account_id: str | None = None
) -> pl.DataFrame:
    """FOCUS rows for a window's GetCostAndUsage page-days, one group at a time (see the module docstring)."""
    rows = [row for page, payload in enumerate(payloads) for row in _page_rows(page, payload)]
    keys = [row.pop("_key") for row in rows]
    for row in rows:
        # The payer is ingestion metadata the extraction adds; CE responses do not carry it.
        row["BillingAccountId"] = row["BillingAccountId"] or billing_account_id or UNKNOWN_BILLING_ACCOUNT
    constants = constant_columns(ingested_at)
    columns = {name: [row[name] for row in rows] for name in (rows[0] if rows else {})}
    columns.update({name: [value] * len(rows) for name, value in constants.items()})
    columns["x_LineId"] = line_ids(SOURCE, keys)
    frame = pl.DataFrame(
        {name: pl.Series(name, values, dtype=POLARS_SCHEMA[name]) for name, values in columns.items()}
    )
    return conform(frame, SOURCE)
