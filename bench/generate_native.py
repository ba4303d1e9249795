"""N records a day in the two other native shapes: Cost Explorer pages and BigQuery billing-export rows.

Both replicate the sample generators' records for that day (mlcost_pipeline.sources.sample), so every record
goes through the production normalizer exactly as a landed one does:
- Cost Explorer: GetCostAndUsage page-days as raw.aws_cost_explorer keeps them ({"request", "response"}), each
  page at most `page_size` groups (Cost Explorer's own page holds a few thousand); a copy of the day's groups
  gets a distinct project tag value per replica, so groups never repeat.
- BigQuery export: the standard usage cost table's rows as google-cloud-bigquery returns them (JSON-safe), each
  replica with a distinct resource label, so rows keep their natural keys distinct.
Grain: one record per group (Cost Explorer) or per export row (BigQuery), N in total.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient
from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows

CE_REQUEST = {
    "Granularity": "DAILY",
    "Metrics": ["UnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity"],
    "GroupBy": [{"Type": "TAG", "Key": "Project"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
}


def cost_explorer_pages(n_groups: int, day: date, page_size: int = 5000) -> list[tuple[date, dict]]:
    """(day, page payload) records holding `n_groups` groups in all."""
    request = {**CE_REQUEST, "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(1)).isoformat()}}
    client = SampleCostExplorerClient(today=day + timedelta(days=30), page_size=10**6)
    response = client.get_cost_and_usage(**request)
    (result,) = response["ResultsByTime"]
    template = result["Groups"]
    groups = []
    for i in range(n_groups):
        group = copy.deepcopy(template[i % len(template)])
        tag, service = group["Keys"]
        group["Keys"] = [tag if i < len(template) else f"{tag}bench-{i // len(template)}", service]
        groups.append(group)
    pages = []
    for k in range(0, len(groups), page_size):
        page = {**response, "ResultsByTime": [{**result, "Groups": groups[k : k + page_size]}]}
        pages.append((day, {"request": request, "response": page}))
    return pages


def billing_export_rows(n_rows: int, day: date) -> list[tuple[date, dict]]:
    """(day, export row) records, `n_rows` of them."""
    template = export_rows(day)
    out = []
    for i in range(n_rows):
        row = copy.deepcopy(template[i % len(template)])
        row["labels"] = [*row.get("labels", []), {"key": "replica", "value": str(i // len(template))}]
        out.append((day, row))
    return out


def write_jsonl(records: list[tuple[date, dict]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for _, payload in records:
            f.write(json.dumps(payload) + "\n")
    return out
