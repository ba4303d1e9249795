"""Azure Cost Management Query API extraction: QueryResult pages, one raw record per (page, UsageDate).

Source: `POST {scope}/providers/Microsoft.CostManagement/query` through any object with `usage(scope, parameters)
-> dict` (first page body) and `next_page(next_link) -> dict` (later pages): the sample, or the SDK adapter in
`sources/azure_query_client.py`.
Grain of a record: one response page restricted to the rows of one UsageDate, with the request that produced it.
Query: Daily, Sum of Cost, grouped by ResourceId, ServiceName and the Project tag, once per cost type
(ActualCost and AmortizedCost; the normalizer joins them). Azure serves at most 31 days per Daily query and
its `to` is inclusive, so longer windows are split.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Protocol

from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label

SOURCE = "azure_cost_management"
API_VERSION = "2023-03-01"
MAX_DAYS_PER_QUERY = 31
DEFAULT_GROUPING = (
    {"type": "Dimension", "name": "ResourceId"},
    {"type": "Dimension", "name": "ServiceName"},
    {"type": "TagKey", "name": "Project"},
)


def grouping_for(tag_key: str = "Project") -> list[dict]:
    """The default grouping with the organization's project tag key."""
    return [*DEFAULT_GROUPING[:2], {"type": "TagKey", "name": tag_key}]


class CostQuery(Protocol):
    def usage(self, scope: str, parameters: dict) -> dict: ...

    def next_page(self, next_link: str) -> dict: ...


class CostQueryError(SourceDataError):
    """The Query API answered something extraction cannot split into days."""


def query_windows(start: date, end: date, max_days: int = MAX_DAYS_PER_QUERY) -> list[tuple[date, date]]:
    """[start, end) as consecutive (first, last) pairs, `last` inclusive, each at most `max_days` long."""
    windows, first = [], start
    while first < end:
        last = min(first + timedelta(days=max_days - 1), end - timedelta(days=1))
        windows.append((first, last))
        first = last + timedelta(days=1)
    return windows


def query_parameters(cost_type: str, first: date, last: date, grouping: Sequence[dict]) -> dict:
    """The QueryDefinition body for one cost type over the inclusive days first..last."""
    return {
        "type": cost_type,
        "timeframe": "Custom",
        "timePeriod": {"from": f"{first.isoformat()}T00:00:00Z", "to": f"{last.isoformat()}T23:59:59Z"},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [dict(g) for g in grouping],
        },
    }


def _usage_day(value: object) -> date:
    text = str(value)
    return (
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        if text.isdigit()
        else date.fromisoformat(text[:10])
    )


def split_page_by_day(request: dict, body: dict, first: date, last: date) -> list[tuple[date, dict]]:
    """One record per UsageDate found in the page's rows, each carrying only that day's rows."""
    where = f"{SOURCE} {window_label(first, last + timedelta(days=1))}: {request['scope']} {request['type']}"
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict) or not isinstance(properties.get("columns"), list):
        raise CostQueryError(f"{where}: malformed page: field properties.columns is missing")
    names = [str(c.get("name", "")).lower() if isinstance(c, dict) else "" for c in properties["columns"]]
    rows = properties.get("rows") or []
    if not isinstance(rows, list):
        raise CostQueryError(f"{where}: malformed page: field properties.rows is not a list")
    if rows and "usagedate" not in names:
        raise CostQueryError(f"{where}: column UsageDate is missing from the response columns {names}")
    by_day: dict[date, list] = {}
    at = names.index("usagedate") if rows else 0
    for r, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            raise CostQueryError(f"{where}: malformed page: properties.rows[{r}] does not match the {len(names)} columns")
        try:
            day = _usage_day(row[at])
        except ValueError:
            raise CostQueryError(f"{where}: properties.rows[{r}]: field UsageDate is not a date: {row[at]!r}") from None
        by_day.setdefault(day, []).append(row)
    out = []
    for day, day_rows in sorted(by_day.items()):
        if not first <= day <= last:
            raise CostQueryError(f"{where}: field UsageDate {day} is outside {first}..{last}")
        page = copy.deepcopy({k: v for k, v in body.items() if k != "properties"})
        page["properties"] = {
            **copy.deepcopy({k: v for k, v in properties.items() if k != "rows"}),
            "rows": day_rows,
        }
        out.append((day, {"request": copy.deepcopy(request), "response": page}))
    return out


def fetch_cost_query(
    query: CostQuery,
    scope: str,
    start: date,
    end: date,
    *,
    cost_types: Sequence[str] = ("ActualCost", "AmortizedCost"),
    grouping: Sequence[dict] = DEFAULT_GROUPING,
    max_pages: int = 10_000,
) -> list[tuple[date, dict]]:
    """All pages of [start, end) (end exclusive) for each cost type, following nextLink.

    A day of a window that returned no rows still gets one record with empty rows, so "fetched, nothing billed"
    is distinguishable from "not fetched".
    """
    if start >= end:
        raise ValueError(f"empty window: start {start} is not before end {end} (end is exclusive)")
    records: list[tuple[date, dict]] = []
    pages = 0
    for cost_type in cost_types:
        for first, last in query_windows(start, end):
            parameters = query_parameters(cost_type, first, last, grouping)
            request = {"scope": scope, "type": cost_type, "timePeriod": parameters["timePeriod"],
                       "api_version": getattr(query, "api_version", API_VERSION),
                       "dataset": parameters["dataset"]}  # fmt: skip
            body = query.usage(scope, parameters)
            empty_page = body
            seen: set[date] = set()
            followed: set[str] = set()  # a nextLink served twice is a loop: following it would double count
            while True:
                pages += 1
                for day, payload in split_page_by_day(request, body, first, last):
                    seen.add(day)
                    records.append((day, payload))
                next_link = (body.get("properties") or {}).get("nextLink")
                if not next_link:
                    break
                if pages >= max_pages:
                    raise CostQueryError(
                        f"{scope} {cost_type}: more than max_pages={max_pages} pages; stopping"
                    )
                if next_link in followed:
                    raise CostQueryError(
                        f"azure_cost_management {window_label(first, last + timedelta(days=1))}: {scope} "
                        f"{cost_type}: nextLink repeated (pagination loop): {next_link[-60:]!r}"
                    )
                followed.add(next_link)
                body = query.next_page(next_link)
            for n in range((last - first).days + 1):
                day = first + timedelta(days=n)
                if day not in seen:
                    page = copy.deepcopy(empty_page)
                    page["properties"] = {**page.get("properties", {}), "nextLink": None, "rows": []}
                    records.append((day, {"request": copy.deepcopy(request), "response": page}))
    return records
