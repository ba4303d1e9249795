"""AWS Cost Explorer extraction: GetCostAndUsage pages, one raw record per (page, day).

Source: `ce:GetCostAndUsage` (boto3 `ce` client, or the sample client). Grain of a record: one response page
restricted to one ResultsByTime day, with the request that produced it; a day whose groups span two pages gives
two records. Query: DAILY, one series per linked account, grouped by the project tag and SERVICE.
Every page is a billed request ($0.01 each), so the pull counts them and stops at a cap.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

DEFAULT_METRICS = ("UnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity")


class CostExplorerClient(Protocol):
    def get_cost_and_usage(self, **kwargs: Any) -> dict: ...


class CostExplorerRequestCapError(RuntimeError):
    """More GetCostAndUsage requests would be needed than the caller allowed."""


@dataclass
class CostExplorerPull:
    records: list[tuple[date, dict]] = field(default_factory=list)
    requests: int = 0


def cost_and_usage_request(
    start: date, end: date, account: str, tag_key: str, metrics: Sequence[str]
) -> dict[str, Any]:
    """The GetCostAndUsage kwargs for one linked account; `end` is exclusive, as in the API."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Filter": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account]}},
        "Metrics": list(metrics),
        "GroupBy": [{"Type": "TAG", "Key": tag_key}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def split_page_by_day(request: dict, response: dict) -> list[tuple[date, dict]]:
    """One `{"request", "response"}` record per ResultsByTime entry; boto3's ResponseMetadata is transport, dropped."""
    envelope = {k: v for k, v in response.items() if k not in ("ResultsByTime", "ResponseMetadata")}
    out = []
    for result in response.get("ResultsByTime") or []:
        day = date.fromisoformat(result["TimePeriod"]["Start"][:10])
        page = {**copy.deepcopy(envelope), "ResultsByTime": [copy.deepcopy(result)]}
        out.append((day, {"request": copy.deepcopy(request), "response": page}))
    return out


def fetch_cost_and_usage(
    client: CostExplorerClient,
    start: date,
    end: date,
    *,
    accounts: Sequence[str],
    tag_key: str = "Project",
    metrics: Sequence[str] = DEFAULT_METRICS,
    max_requests: int = 500,
) -> CostExplorerPull:
    """All pages of [start, end) for each linked account, following NextPageToken (there is no SDK paginator)."""
    if start >= end:
        raise ValueError(f"empty window: start {start} is not before end {end} (end is exclusive)")
    pull = CostExplorerPull()
    for account in accounts:
        request = cost_and_usage_request(start, end, account, tag_key, metrics)
        token: str | None = None
        while True:
            if pull.requests >= max_requests:
                raise CostExplorerRequestCapError(
                    f"Cost Explorer request cap reached: {pull.requests} GetCostAndUsage requests made "
                    f"(max_requests={max_requests}, $0.01 each) and account {account} needs more pages for "
                    f"[{start}, {end}); raise max_requests or narrow the window"
                )
            kwargs = request if token is None else {**request, "NextPageToken": token}
            response = client.get_cost_and_usage(**kwargs)
            pull.requests += 1
            pull.records.extend(split_page_by_day(request, response))
            token = response.get("NextPageToken")
            if not token:
                break
    return pull
