"""AWS Cost Explorer extraction: GetCostAndUsage pages, one raw record per (page, day).

Source: `ce:GetCostAndUsage` (boto3 `ce` client, or the sample client). Grain of a record: one response page
restricted to one ResultsByTime day, with the request that produced it; a day whose groups span two pages gives
two records. Query: DAILY, grouped by at most two keys (default: the project tag and SERVICE), one query series
per configured linked account (a LINKED_ACCOUNT filter keeps the account without spending a GroupBy slot), or one
series for the whole organization when no account is configured. `Estimated` is kept on every day.
Every page is a billed request ($0.01 each), so the pull counts them and stops at a cap.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label

SOURCE = "aws_cost_explorer"
DEFAULT_METRICS = ("UnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity")
METRICS = ("AmortizedCost", "BlendedCost", "NetAmortizedCost", "NetUnblendedCost", "NormalizedUsageAmount",
           "UnblendedCost", "UsageQuantity")  # fmt: skip
GROUP_TYPES = ("DIMENSION", "TAG", "COST_CATEGORY")


class CostExplorerClient(Protocol):
    def get_cost_and_usage(self, **kwargs: Any) -> dict: ...


class CostExplorerRequestCapError(RuntimeError):
    """More GetCostAndUsage requests would be needed than the caller allowed."""


@dataclass
class CostExplorerPull:
    records: list[tuple[date, dict]] = field(default_factory=list)
    requests: int = 0

    @property
    def estimated_days(self) -> list[date]:
        """Days Cost Explorer still marks Estimated: they change until the bill is final, so re-pull them."""
        return sorted({day for day, p in self.records if any(r.get("Estimated") for r in p["response"]["ResultsByTime"])})


def parse_group_by(specs: Sequence[str], tag_key: str = "Project") -> list[dict[str, str]]:
    """`TYPE:Key` strings (e.g. `TAG:Project`, `DIMENSION:SERVICE`) -> GroupBy; empty -> the tag and SERVICE."""
    if not specs:
        return [{"Type": "TAG", "Key": tag_key}, {"Type": "DIMENSION", "Key": "SERVICE"}]
    out = []
    for spec in specs:
        kind, _, key = spec.partition(":")
        if kind.upper() not in GROUP_TYPES or not key:
            raise ValueError(f"MLCOST_AWS_GROUP_BY: {spec!r} is not TYPE:Key with TYPE one of {list(GROUP_TYPES)}")
        out.append({"Type": kind.upper(), "Key": key})
    return validated_group_by(out)


def validated_group_by(group_by: Sequence[dict]) -> list[dict]:
    """Cost Explorer accepts at most two GroupBy keys; the normalizer needs SERVICE (FOCUS ServiceName)."""
    group_by = [dict(g) for g in group_by]
    if len(group_by) > 2:
        raise ValueError(f"Cost Explorer accepts at most 2 GroupBy keys, got {len(group_by)}: {group_by}")
    if {"Type": "DIMENSION", "Key": "SERVICE"} not in group_by:
        raise ValueError(f"GroupBy must include DIMENSION:SERVICE (FOCUS ServiceName is mandatory), got {group_by}")
    return group_by


def validated_metrics(metrics: Sequence[str]) -> list[str]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"Cost Explorer metrics must be among {list(METRICS)}, got {list(metrics)}")
    if not {"UnblendedCost", "NetUnblendedCost"} & set(metrics):
        raise ValueError("Cost Explorer metrics need UnblendedCost or NetUnblendedCost (FOCUS BilledCost)")
    return list(metrics)


def cost_and_usage_request(
    start: date, end: date, account: str | None, group_by: Sequence[dict] | str, metrics: Sequence[str]
) -> dict[str, Any]:
    """The GetCostAndUsage kwargs for one linked account (or all of them); `end` is exclusive, as in the API.

    `group_by` may be a tag key alone, meaning that tag and SERVICE.
    """
    if isinstance(group_by, str):
        group_by = parse_group_by((), group_by)
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(metrics),
        "GroupBy": [dict(g) for g in group_by],
    }
    if account is not None:
        request["Filter"] = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account]}}
    return request


def split_page_by_day(request: dict, response: dict, where: str = "page") -> list[tuple[date, dict]]:
    """One `{"request", "response"}` record per ResultsByTime entry; boto3's ResponseMetadata is transport, dropped."""
    results = response.get("ResultsByTime") if isinstance(response, dict) else None
    if not isinstance(results, list):
        raise SourceDataError(f"{where}: field ResultsByTime is missing or not a list")
    envelope = {k: v for k, v in response.items() if k not in ("ResultsByTime", "ResponseMetadata")}
    out = []
    for i, result in enumerate(results):
        start = (result.get("TimePeriod") or {}).get("Start") if isinstance(result, dict) else None
        try:
            day = date.fromisoformat(str(start)[:10])
        except ValueError:
            raise SourceDataError(
                f"{where}: field ResultsByTime[{i}].TimePeriod.Start is missing or not a date: {start!r}"
            ) from None
        page = {**copy.deepcopy(envelope), "ResultsByTime": [copy.deepcopy(result)]}
        out.append((day, {"request": copy.deepcopy(request), "response": page}))
    return out


def fetch_cost_and_usage(
    client: CostExplorerClient,
    start: date,
    end: date,
    *,
    accounts: Sequence[str] = (),
    tag_key: str = "Project",
    group_by: Sequence[dict] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    max_requests: int = 500,
) -> CostExplorerPull:
    """All pages of [start, end) for each linked account, following NextPageToken (there is no SDK paginator)."""
    if start >= end:
        raise ValueError(f"empty window: start {start} is not before end {end} (end is exclusive)")
    group_by = validated_group_by(group_by or parse_group_by((), tag_key))
    metrics = validated_metrics(metrics)
    pull = CostExplorerPull()
    for account in list(accounts) or [None]:
        request = cost_and_usage_request(start, end, account, group_by, metrics)
        token: str | None = None
        # A token or a (day, group) seen twice means the API served a page again: landing it would double count.
        seen_tokens: set[str] = set()
        seen_groups: set[tuple[date, tuple]] = set()
        while True:
            if pull.requests >= max_requests:
                raise CostExplorerRequestCapError(
                    f"Cost Explorer request cap reached: {pull.requests} GetCostAndUsage requests made "
                    f"(max_requests={max_requests}, $0.01 each) and account {account or 'all'} needs more pages "
                    f"for [{start}, {end}); raise MLCOST_AWS_MAX_REQUESTS or narrow the window"
                )
            kwargs = request if token is None else {**request, "NextPageToken": token}
            response = client.get_cost_and_usage(**kwargs)
            pull.requests += 1
            where = f"{SOURCE} {window_label(start, end)}: account {account or 'all'}, page {pull.requests}"
            records = split_page_by_day(request, response, where)
            outside = [day for day, _ in records if not start <= day < end]
            if outside:
                raise SourceDataError(f"{where}: field ResultsByTime.TimePeriod.Start {outside[0]} is outside the window")
            for day, record in records:
                for group in record["response"]["ResultsByTime"][0].get("Groups") or []:
                    keys = (day, tuple(group.get("Keys") or ()) if isinstance(group, dict) else repr(group))
                    if keys in seen_groups:
                        raise SourceDataError(
                            f"{where}: duplicate page: group {list(keys[1])} of {day} was already returned by an "
                            "earlier page (refusing to count it twice)"
                        )
                    seen_groups.add(keys)
            pull.records.extend(records)
            token = response.get("NextPageToken")
            if not token:
                break
            if token in seen_tokens:
                raise SourceDataError(f"{where}: NextPageToken {token[:40]!r} was already followed (pagination loop)")
            seen_tokens.add(token)
    return pull
