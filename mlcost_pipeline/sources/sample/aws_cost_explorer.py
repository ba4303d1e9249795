"""Sample AWS Cost Explorer: `get_cost_and_usage` answering like boto3's `ce` client, for Acme ML's accounts.

Source: the fictional organization in `org.py`. Grain of the answer: one group per (day, requested group keys),
native response dicts (string amounts with 10 decimals, `Project$value` tag keys, `NextPageToken` paging).
Supported request: Granularity DAILY, any of the seven CE metrics, GroupBy of TAG keys and the SERVICE and
LINKED_ACCOUNT dimensions (any order, at most 2), an optional LINKED_ACCOUNT filter. Anything else raises
ValueError, the way the real API answers ValidationException.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from mlcost_pipeline.sources.sample import org

EC2 = "Amazon Elastic Compute Cloud - Compute"
EC2_OTHER = "EC2 - Other"
SAGEMAKER = "Amazon SageMaker"
S3 = "Amazon Simple Storage Service"
CLOUDWATCH = "AmazonCloudWatch"
VPC = "Amazon Virtual Private Cloud"
EKS = "Amazon Elastic Container Service for Kubernetes"
TAX = "Tax"

RESOURCE_TAG_KEY = "Project"  # the cost-allocation tag every sample resource carries (when tagged at all)
METRICS = ("AmortizedCost", "BlendedCost", "NetAmortizedCost", "NetUnblendedCost", "NormalizedUsageAmount",
           "UnblendedCost", "UsageQuantity")  # fmt: skip
HOURLY = {"ml.g5.xlarge": Decimal("1.408"), "ml.g5.2xlarge": Decimal("1.515"), "g5.xlarge": Decimal("1.006"),
          "g5.12xlarge": Decimal("5.672"), "p4d.24xlarge": Decimal("32.7726")}  # fmt: skip
SAVINGS_PLAN_RATE = Decimal("0.72")  # prod EC2 runs under a Compute Savings Plan: amortized < unblended
EDP_DISCOUNT = Decimal("0.97")  # private pricing: the Net* metrics are 3 % below the gross ones
TAX_RATE = Decimal("0.05")
_Q = Decimal("0.0000000001")


@dataclass(frozen=True)
class _Item:
    account: str
    project_value: str  # "" when untagged
    service: str
    unblended: Decimal
    usage: Decimal
    amortized: Decimal | None = None  # None: same as unblended


def _money(r: random.Random, low: float, high: float) -> Decimal:
    return Decimal(repr(r.uniform(low, high))).quantize(_Q)


def _hours(r: random.Random, low: float, high: float) -> Decimal:
    return Decimal(repr(r.uniform(low, high))).quantize(Decimal("0.001"))


def _instance(account: str, value: str, service: str, kind: str, hours: Decimal, count: int = 1) -> _Item:
    return _Item(account, value, service, (HOURLY[kind] * hours * count).quantize(_Q), hours * count)


def _prod(day: date, acct: str) -> list[_Item]:
    r = org.rng(day, "aws:" + acct)
    items = []
    for model, project in org.MODELS.items():  # one serving endpoint per model hosted on AWS
        if project in ("fraud-detection", "churn", "recsys", "search-ranking"):
            kind = "ml.g5.2xlarge" if model == "recsys-two-tower" else "ml.g5.xlarge"
            items.append(
                _instance(acct, org.spelled(project, r), SAGEMAKER, kind, Decimal(24), r.choice((1, 2)))
            )
    for project, kind, chance in (("churn", "g5.12xlarge", 0.7), ("fraud-detection", "g5.12xlarge", 0.5),
                                  ("recsys", "p4d.24xlarge", 0.4)):  # fmt: skip
        if r.random() < chance:
            item = _instance(acct, org.spelled(project, r), EC2, kind, _hours(r, 1.5, 14.0))
            items.append(_Item(acct, item.project_value, EC2, item.unblended, item.usage,
                               (item.unblended * SAVINGS_PLAN_RATE).quantize(_Q)))  # fmt: skip
    for project in ("fraud-detection", "churn", "recsys", "search-ranking", "data-platform"):
        items.append(_Item(acct, project, S3, _money(r, 2.0, 45.0), _hours(r, 100, 5000)))
        items.append(_Item(acct, project, EC2_OTHER, _money(r, 0.5, 6.0), _hours(r, 10, 400)))
    items.append(_Item(acct, "", S3, _money(r, 1.0, 9.0), _hours(r, 50, 900)))
    items.append(_Item(acct, "", CLOUDWATCH, _money(r, 3.0, 12.0), _hours(r, 1000, 9000)))
    return items


def _research(day: date, acct: str) -> list[_Item]:
    r = org.rng(day, "aws:" + acct)
    # The shared GPU cluster: two p4d nodes around the clock, never tagged with a project.
    items = [_instance(acct, "", EC2, "p4d.24xlarge", Decimal(24), 2)]
    for project, kind, chance in (("demand-forecast", "g5.xlarge", 0.8), ("search-ranking", "g5.12xlarge", 0.5),
                                  ("churn", "g5.xlarge", 0.3)):  # fmt: skip
        if r.random() < chance:
            items.append(_instance(acct, org.spelled(project, r), EC2, kind, _hours(r, 1.0, 10.0)))
    for project in ("demand-forecast", "search-ranking"):
        items.append(_Item(acct, project, S3, _money(r, 1.0, 20.0), _hours(r, 50, 2000)))
    items.append(_Item(acct, "", S3, _money(r, 4.0, 25.0), _hours(r, 100, 3000)))  # scratch buckets
    items.append(_Item(acct, "", EC2_OTHER, _money(r, 2.0, 15.0), _hours(r, 20, 600)))  # dev-box volumes
    return items


def _overhead(day: date, acct: str) -> list[_Item]:
    r = org.rng(day, "aws:" + acct)
    return [
        _Item(acct, "", CLOUDWATCH, _money(r, 20.0, 60.0), _hours(r, 5000, 40000)),
        _Item(acct, "", VPC, _money(r, 30.0, 55.0), _hours(r, 48, 96)),  # NAT gateways
        _Item(acct, "", EKS, Decimal("7.2000000000"), Decimal(72)),  # three control planes at $0.10/h
    ]


_CONTENT = {"111111111111": _prod, "222222222222": _research, "333333333333": _overhead}


def day_items(day: date, account: str) -> list[_Item]:
    """Every charge of one (day, account), tax last; a pure function of (seed, day, account)."""
    items = _CONTENT[account](day, account)
    tax = sum((i.unblended for i in items), Decimal(0)) * TAX_RATE
    return [*items, _Item(account, "", TAX, tax.quantize(_Q), Decimal(0))]


def _metric_values(item: _Item) -> dict[str, Decimal]:
    amortized = item.unblended if item.amortized is None else item.amortized
    net = Decimal(1) if item.service == TAX else EDP_DISCOUNT
    return {
        "UnblendedCost": item.unblended, "BlendedCost": item.unblended, "AmortizedCost": amortized,
        "NetUnblendedCost": (item.unblended * net).quantize(_Q), "NetAmortizedCost": (amortized * net).quantize(_Q),
        "UsageQuantity": item.usage, "NormalizedUsageAmount": item.usage if item.service == EC2 else Decimal(0),
    }  # fmt: skip


def _metrics(totals: dict[str, Decimal], wanted: list[str]) -> dict[str, dict[str, str]]:
    return {m: {"Amount": f"{totals[m]:.10f}", "Unit": "N/A" if m.endswith(("Quantity", "Amount")) else "USD"}
            for m in wanted}  # fmt: skip


class SampleCostExplorerClient:
    """Duck-typed boto3 `ce` client for `get_cost_and_usage`; `today` decides which days are still Estimated."""

    def __init__(self, *, today: date | None = None, page_size: int = 25):
        self.today = today or datetime.now(UTC).date()
        self.page_size = page_size

    def get_cost_and_usage(self, **kwargs: object) -> dict:
        start, end, metrics, group_by, accounts = self._validated(kwargs)
        days = [start + timedelta(n) for n in range((end - start).days)]
        entries = [(day, self._groups(day, accounts, group_by, metrics)) for day in days]
        fingerprint = _fingerprint(kwargs)
        day_at, group_at = _decode_token(kwargs.get("NextPageToken"), fingerprint)
        results, room = [], self.page_size
        while day_at < len(entries) and room > 0:
            day, groups = entries[day_at]
            taken = groups[group_at : group_at + room]
            results.append(self._result(day, taken, metrics, group_by))
            room -= len(taken)
            group_at += len(taken)
            if group_at >= len(groups):
                day_at, group_at = day_at + 1, 0
        response: dict = {
            "GroupDefinitions": [{"Type": g["Type"], "Key": g["Key"]} for g in group_by],
            "ResultsByTime": results,
            "DimensionValueAttributes": _account_attributes(results, group_by),
        }
        if day_at < len(entries):
            response["NextPageToken"] = _encode_token(day_at, group_at, fingerprint)
        return response

    def _validated(self, kw: dict) -> tuple[date, date, list[str], list[dict], list[str]]:
        period = kw.get("TimePeriod") or {}
        start, end = date.fromisoformat(period["Start"]), date.fromisoformat(period["End"])
        if start >= end:
            raise ValueError(f"ValidationException: Start {start} must be before End {end}")
        if kw.get("Granularity") != "DAILY":
            raise ValueError(
                f"sample Cost Explorer supports Granularity DAILY only, got {kw.get('Granularity')!r}"
            )
        metrics = list(kw.get("Metrics") or [])
        unknown = [m for m in metrics if m not in METRICS]
        if not metrics or unknown:
            raise ValueError(f"ValidationException: invalid Metrics {metrics!r}")
        group_by = list(kw.get("GroupBy") or [])
        for g in group_by:
            if g.get("Type") not in ("TAG", "DIMENSION") or (
                g["Type"] == "DIMENSION" and g.get("Key") not in ("SERVICE", "LINKED_ACCOUNT")
            ):
                raise ValueError(f"sample Cost Explorer cannot group by {g!r}")
        if len(group_by) > 2:
            raise ValueError("ValidationException: GroupBy accepts at most 2 definitions")
        accounts = list(org.AWS_ACCOUNTS)
        flt = kw.get("Filter")
        if flt is not None:
            dims = flt.get("Dimensions") or {}
            if set(flt) != {"Dimensions"} or dims.get("Key") != "LINKED_ACCOUNT":
                raise ValueError(f"sample Cost Explorer supports only a LINKED_ACCOUNT filter, got {flt!r}")
            accounts = [a for a in accounts if a in dims.get("Values", [])]
        return start, end, metrics, group_by, accounts

    def _groups(self, day: date, accounts: list[str], group_by: list[dict], metrics: list[str]) -> list:
        sums: dict[tuple[str, ...], dict[str, Decimal]] = {}
        for account in accounts:
            for item in day_items(day, account):
                keys = tuple(_key(g, item) for g in group_by)
                totals = sums.setdefault(keys, dict.fromkeys(METRICS, Decimal(0)))
                for name, value in _metric_values(item).items():
                    totals[name] += value
        return [{"Keys": list(k), "Metrics": _metrics(sums[k], metrics)} for k in sorted(sums)]

    def _result(self, day: date, groups: list, metrics: list[str], group_by: list[dict]) -> dict:
        total = {} if group_by else groups[0]["Metrics"] if groups else {}
        return {
            "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(1)).isoformat()},
            "Total": total,
            "Groups": groups if group_by else [],
            "Estimated": (self.today - day).days <= 3,
        }


def _key(g: dict, item: _Item) -> str:
    if g["Type"] == "TAG":
        return f"{g['Key']}${item.project_value if g['Key'] == RESOURCE_TAG_KEY else ''}"
    return item.service if g["Key"] == "SERVICE" else item.account


def _account_attributes(results: list[dict], group_by: list[dict]) -> list[dict]:
    positions = [n for n, g in enumerate(group_by) if g == {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}]
    seen = sorted({grp["Keys"][p] for r in results for grp in r["Groups"] for p in positions})
    return [{"Value": a, "Attributes": {"description": org.AWS_ACCOUNTS[a]}} for a in seen]


def _fingerprint(kwargs: dict) -> str:
    request = {k: v for k, v in kwargs.items() if k != "NextPageToken"}
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(day_at: int, group_at: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{day_at}:{group_at}:{fingerprint}".encode()).decode()


def _decode_token(token: object, fingerprint: str) -> tuple[int, int]:
    if token is None:
        return 0, 0
    try:
        day_at, group_at, fp = base64.urlsafe_b64decode(str(token)).decode().split(":")
        position = int(day_at), int(group_at)
    except ValueError as exc:
        raise ValueError(f"InvalidNextTokenException: {token!r}") from exc
    if fp != fingerprint:
        raise ValueError("RequestChangedException: the request changed between pages")
    return position
