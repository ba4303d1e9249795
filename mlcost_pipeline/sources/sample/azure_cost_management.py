"""Sample Azure Cost Management Query API for Acme ML's subscription: native QueryResult bodies, with paging.

Source: the fictional organization in `org.py`. Grain of the answer: one row per (UsageDate, requested grouping
values), columns `<cost>, UsageDate, <groupings...>, Currency` like the real API (TagKey grouping adds TagKey and
TagValue columns; untagged rows carry ""). Costs are JSON floats, USD.

Reservation model: VM llm-a100-01 runs under a one-year reservation. ActualCost shows that VM at 0 and the
monthly reservation fee as one purchase row on the 1st (resource = the reservation order); AmortizedCost drops
the purchase row and spreads the fee over the month's days on the VM. Everything else is identical in both.
Dedicated GPU VMs (`vm-<project>-gpu`, the MLflow sample's dedicated A100 runs) are billed for every day a run
used them, tagged with their project: the charges allocation splits among those runs by overlap.
Supported query: timeframe Custom of at most 31 days (`to` inclusive), granularity Daily, one Sum aggregation,
grouping by ResourceId, ResourceGroupName, ServiceName and the Project TagKey.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import random
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from mlcost_pipeline.sources.sample import org

API_VERSION = "2023-03-01"
HOST = "https://management.azure.com"
COST_COLUMNS = ("Cost", "PreTaxCost", "CostUSD", "PreTaxCostUSD")
TAG_KEY = "Project"
RESERVED_VM = "llm-a100-01"
RESERVATION_ORDER = "/providers/Microsoft.Capacity/reservationOrders/5e1c0a3e-acme-4d2b-9c1f-00000000a100"
RESERVATION_MONTHLY_FEE = 1850.4  # USD, one Standard_NC24ads_A100_v4 for a year, billed monthly
A100_HOURLY, T4_HOURLY = 3.673, 0.526

VM, STORAGE, AML, BANDWIDTH = "Virtual Machines", "Storage", "Azure Machine Learning", "Bandwidth"

# (resource group, provider/type, name, service, Project tag value or "" when untagged)
RESOURCES = (
    ("rg-llm-assistant", "Microsoft.Compute/virtualMachines", RESERVED_VM, VM, "llm-assistant"),
    ("rg-llm-assistant", "Microsoft.Compute/virtualMachines", "llm-a100-02", VM, "llm-assistant"),
    ("rg-llm-assistant", "Microsoft.Compute/virtualMachines", "llm-a100-02", BANDWIDTH, "llm-assistant"),
    ("rg-llm-assistant", "Microsoft.Storage/storageAccounts", "stllmassistant", STORAGE, "llm-assistant"),
    (
        "rg-llm-assistant",
        "Microsoft.MachineLearningServices/workspaces",
        "mlw-llm-assistant",
        AML,
        "llm-assistant",
    ),
    ("rg-vision-qa", "Microsoft.Compute/virtualMachines", "vision-t4-01", VM, "vision-qa"),
    ("rg-vision-qa", "Microsoft.Storage/storageAccounts", "stvisionqa", STORAGE, "vision-qa"),
    ("rg-vision-qa", "Microsoft.MachineLearningServices/workspaces", "mlw-vision-qa", AML, "vision-qa"),
    ("rg-churn", "Microsoft.MachineLearningServices/workspaces", "mlw-churn", AML, "churn_pred"),
    ("rg-churn", "Microsoft.Storage/storageAccounts", "stchurn", STORAGE, "Churn"),
    # The shared GPU cluster: never tagged with a project; split later by MLflow GPU-hours.
    ("rg-shared-gpu", "Microsoft.Compute/virtualMachines", f"{org.SHARED_GPU_CLUSTER}-01", VM, ""),
    ("rg-shared-gpu", "Microsoft.Compute/virtualMachines", f"{org.SHARED_GPU_CLUSTER}-02", VM, ""),
    ("rg-shared-gpu", "Microsoft.Storage/storageAccounts", "stgpushared", STORAGE, ""),
    ("rg-platform", "Microsoft.Network/publicIPAddresses", "pip-platform-egress", BANDWIDTH, ""),
    ("rg-platform", "Microsoft.Storage/storageAccounts", "stplatformlogs", STORAGE, ""),
)


def _daily_cost(name: str, service: str, r: random.Random) -> float:
    if service == VM and name.startswith(org.SHARED_GPU_CLUSTER):
        return A100_HOURLY * 24
    if service == VM:
        hourly = A100_HOURLY if "a100" in name else T4_HOURLY
        return hourly * r.uniform(4.0, 24.0)
    if service == STORAGE:
        return r.uniform(0.8, 30.0)
    if service == AML:
        return r.uniform(5.0, 120.0)
    return r.uniform(0.05, 9.0)  # bandwidth


def _dedicated_gpu_vms(day: date, subscription: str) -> list[tuple[str, str]]:
    """(resource id, project) of the dedicated A100 VMs an MLflow sample run used on `day`.

    Such a VM is billed for the whole day (nobody deallocates it between runs), so allocation can give each run
    its overlap with the day and keep the rest on the project: the sample's direct run cost.
    """
    from mlcost_pipeline.sources.sample.mlflow_store import DEDICATED_INSTANCES, plan_day

    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
    end = start + 86_400_000
    used = set()
    for planned_day in (day - timedelta(days=1), day):  # a run lasts under 10 hours: at most one day earlier
        for run in plan_day(planned_day):
            resource_id = run.tags.get("resource_id", "")
            if (resource_id.startswith(f"/subscriptions/{subscription}/") and run.start_ms < end
                    and run.end_ms > start):  # fmt: skip
                used.add((resource_id, DEDICATED_INSTANCES[resource_id][0]))
    return sorted(used)


def day_rows(day: date, subscription: str, cost_type: str) -> list[dict]:
    """Resource-level charges of one day for one cost type; a pure function of (seed, day, subscription)."""
    r = org.rng(day, "azure:" + subscription)
    rows = []
    for group, kind, name, service, tag in RESOURCES:
        cost = _daily_cost(name, service, r)  # drawn for every type, so both types see the same numbers
        if name == RESERVED_VM and service == VM:
            days = calendar.monthrange(day.year, day.month)[1]
            cost = RESERVATION_MONTHLY_FEE / days if cost_type == "AmortizedCost" else 0.0
        resource_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{kind}/{name}"
        rows.append({"ResourceId": resource_id, "ResourceGroupName": group, "ServiceName": service,
                     "TagKey": TAG_KEY if tag else "", "TagValue": tag, "cost": cost})  # fmt: skip
    for resource_id, project in _dedicated_gpu_vms(day, subscription):
        rows.append({"ResourceId": resource_id, "ResourceGroupName": resource_id.split("/")[4], "ServiceName": VM,
                     "TagKey": TAG_KEY, "TagValue": project, "cost": A100_HOURLY * 24})  # fmt: skip
    if cost_type != "AmortizedCost" and day.day == 1:
        rows.append({"ResourceId": RESERVATION_ORDER, "ResourceGroupName": "", "ServiceName": VM,
                     "TagKey": "", "TagValue": "", "cost": RESERVATION_MONTHLY_FEE})  # fmt: skip
    return rows


def _grouping_columns(grouping: list[dict]) -> list[str]:
    columns = []
    for g in grouping:
        if g.get("type") == "TagKey" and g.get("name") == TAG_KEY:
            columns += ["TagKey", "TagValue"]
        elif g.get("type") == "Dimension" and g.get("name") in (
            "ResourceId",
            "ResourceGroupName",
            "ServiceName",
        ):
            columns.append(g["name"])
        else:
            raise ValueError(f"sample Cost Management query cannot group by {g!r}")
    return columns


def _validated(scope: str, parameters: dict) -> tuple[str, str, date, date, str, list[str]]:
    subscription = scope.strip("/").split("/")[-1]
    if scope.strip("/") != f"subscriptions/{subscription}" or subscription not in org.AZURE_SUBSCRIPTIONS:
        raise ValueError(
            f"sample Cost Management knows only scopes /subscriptions/<id> of Acme ML, got {scope!r}"
        )
    cost_type = parameters.get("type")
    if cost_type not in ("ActualCost", "AmortizedCost", "Usage"):
        raise ValueError(f"BadRequest: query type {cost_type!r}")
    period = parameters.get("timePeriod") or {}
    if parameters.get("timeframe") != "Custom" or "from" not in period or "to" not in period:
        raise ValueError("sample Cost Management supports timeframe Custom with timePeriod from/to only")
    first, last = date.fromisoformat(period["from"][:10]), date.fromisoformat(period["to"][:10])
    if not first <= last or (last - first).days >= 31:
        raise ValueError(f"BadRequest: Daily granularity needs 1 to 31 days, got {first}..{last}")
    dataset = parameters.get("dataset") or {}
    if dataset.get("granularity") != "Daily":
        raise ValueError("sample Cost Management supports granularity Daily only")
    aggregation = list((dataset.get("aggregation") or {}).values())
    if (
        len(aggregation) != 1
        or aggregation[0].get("name") not in COST_COLUMNS
        or aggregation[0].get("function") != "Sum"
    ):
        raise ValueError(f"sample Cost Management needs one Sum over {COST_COLUMNS}, got {aggregation!r}")
    return (
        subscription,
        cost_type,
        first,
        last,
        aggregation[0]["name"],
        _grouping_columns(dataset.get("grouping") or []),
    )


class SampleCostQuery:
    """`usage(scope, parameters)` answers the first page; `next_page(nextLink)` the later ones (stateless)."""

    def __init__(self, *, page_size: int = 20):
        self.page_size = page_size

    def usage(self, scope: str, parameters: dict) -> dict:
        return self._page(scope, parameters, 0)

    def next_page(self, next_link: str) -> dict:
        token = parse_qs(urlsplit(next_link).query).get("$skiptoken", [""])[0]
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()))
        except ValueError as exc:
            raise ValueError(f"BadRequest: invalid $skiptoken in {next_link!r}") from exc
        return self._page(state["scope"], state["parameters"], state["offset"])

    def _page(self, scope: str, parameters: dict, offset: int) -> dict:
        subscription, cost_type, first, last, cost_column, columns = _validated(scope, parameters)
        rows = []
        for n in range((last - first).days + 1):
            day = first + timedelta(n)
            sums: dict[tuple, float] = {}
            for row in day_rows(day, subscription, cost_type):
                key = tuple(row[c] for c in columns)
                sums[key] = sums.get(key, 0.0) + row["cost"]
            usage_date = int(day.strftime("%Y%m%d"))
            rows += [[cost, usage_date, *key, "USD"] for key, cost in sorted(sums.items())]
        page, rest = rows[offset : offset + self.page_size], rows[offset + self.page_size :]
        next_link = None
        if rest:
            state = {"scope": scope, "parameters": parameters, "offset": offset + self.page_size}
            token = base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()
            next_link = f"{HOST}{scope}/providers/Microsoft.CostManagement/query?api-version={API_VERSION}&$skiptoken={token}"
        query_id = hashlib.sha256(json.dumps([scope, parameters], sort_keys=True).encode()).hexdigest()
        name = f"{query_id[:8]}-{query_id[8:12]}-{query_id[12:16]}-{query_id[16:20]}-{query_id[20:32]}"
        return {
            "id": f"{scope}/providers/Microsoft.CostManagement/query/{name}",
            "name": name,
            "type": "microsoft.costmanagement/Query",
            "properties": {
                "nextLink": next_link,
                "columns": [{"name": cost_column, "type": "Number"}, {"name": "UsageDate", "type": "Number"},
                            *({"name": c, "type": "String"} for c in columns), {"name": "Currency", "type": "String"}],
                "rows": page,
            },
        }  # fmt: skip
