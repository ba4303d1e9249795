"""Sample GCP billing export rows for Acme ML: what the standard usage cost table holds for one usage day.

Source shape: `SELECT * FROM gcp_billing_export_v1_<BILLING_ACCOUNT>` as google-cloud-bigquery returns it, rendered
JSON-safe: records as dicts, repeated records as lists, TIMESTAMP as ISO 8601 UTC text, FLOAT as float (costs have
at most 6 decimals, so `Decimal(str(x))` gives them back exactly). Grain: one row per (project, service, SKU,
resource labels, usage window) and cost_type. Billing is in EUR with the day's `currency_conversion_rate`.

Acme ML on GCP, every day:
- the shared GPU pool: `GPU_POOL_NODES` a2-highgpu-1g nodes in acme-shared-ml, labelled `cluster=gpu-shared` and
  no project, one GPU row and one core row per node and hour (24 x 2 x nodes rows);
- a dedicated a2-highgpu-1g training box in acme-recsys-prod for a few hours;
- two always-on CPU VMs (search API labelled `proj=...`, forecasting ETL unlabelled) with sustained-use
  discounts, and sometimes a promotion credit too;
- Vertex AI training jobs and online-prediction endpoints labelled with project and model;
- Cloud Storage buckets (6-hour rows, one unlabelled) and BigQuery analysis (churn features labelled
  `proj=churn_pred`-style, forecasting queries unlabelled);
- one tax row, and on the 15th a goodwill adjustment (a negative `cost_type=adjustment` row).
Service ids are Google's public ones; SKU ids and the tax row's service/SKU names are illustrative.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from mlcost_pipeline.sources.sample import org

GPU_POOL_NODES = 2
NEGOTIATED_DISCOUNT = Decimal("0.05")  # Acme's contract: cost = list x 0.95 on Compute Engine and Vertex AI
TAX_RATE = Decimal("0.19")
_PACIFIC = ZoneInfo("America/Los_Angeles")
_CENT6 = Decimal("0.000001")

COMPUTE = {"id": "6F81-5844-456A", "description": "Compute Engine"}
VERTEX = {"id": "C7E2-9256-1C43", "description": "Vertex AI"}
STORAGE = {"id": "95FF-2EF5-5EA1", "description": "Cloud Storage"}
BIGQUERY = {"id": "24E6-581D-38E5", "description": "BigQuery"}
INVOICE = {"id": "", "description": "Invoice"}

# sku -> (id, description, USD list price per pricing unit)
SKUS = {
    "a100": ("A1C0-0001-GPU1", "Nvidia Tesla A100 GPU running in Americas", Decimal("2.933908")),
    "a2core": ("A2C0-0002-CORE", "A2 Instance Core running in Americas", Decimal("0.031611")),
    "n2core": ("N2C0-0003-CORE", "N2 Instance Core running in EMEA", Decimal("0.034773")),
    "vtrain": ("VX00-0004-TRN1", "Custom model training Nvidia Tesla A100 GPU running in Americas", Decimal("3.372600")),
    "vpred": ("VX00-0005-PRD1", "Online prediction n1-standard-4 in Americas", Decimal("0.218500")),
    "gcs": ("GCS0-0006-STD1", "Standard Storage US Multi-region", Decimal("0.026000")),
    "bq": ("BQ00-0007-ANL1", "Analysis", Decimal("6.250000")),
    "tax": ("TAX0-0008-VAT1", "Tax", Decimal("0")),
}

US_CENTRAL = {"location": "us-central1", "country": "US", "region": "us-central1", "zone": "us-central1-a"}
EU_WEST = {"location": "europe-west4", "country": "NL", "region": "europe-west4", "zone": "europe-west4-a"}
US_MULTI = {"location": "us", "country": "US", "region": None, "zone": None}
NO_LOCATION = {"location": None, "country": None, "region": None, "zone": None}

PROJECT_LABELS = {
    "acme-recsys-prod": {"env": "prod", "team": "recsys"},
    "acme-search": {"env": "prod"},
    "acme-forecasting": {"team": "forecasting"},
    "acme-shared-ml": {"team": "ml-platform"},
}


def _label_value(project: str, r: random.Random) -> str:
    """A project value as a team would type it, among the spellings GCP accepts (lowercase, digits, _ and -)."""
    variants = [v for v in org.PROJECT_VALUE_VARIANTS.get(project, (project,)) if re.fullmatch(r"[a-z0-9_-]+", v)]
    return r.choice(variants)


def _kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat()


def _money(x: Decimal) -> float:
    return float(x.quantize(_CENT6, rounding=ROUND_HALF_EVEN))


def _project(project_id: str) -> dict:
    name, number = org.GCP_PROJECTS[project_id]
    return {
        "id": project_id,
        "number": number,
        "name": name,
        "labels": _kv(PROJECT_LABELS[project_id]),
        "ancestry_numbers": f"/880000000001/410000000100/{number}/",
    }


class _Day:
    """Accumulates one day's rows; all randomness comes from one `org.rng(day, "gcp")` stream."""

    def __init__(self, day: date) -> None:
        self.day = day
        self.r: random.Random = org.rng(day, "gcp")
        self.rate = Decimal("0.9150") + Decimal(self.r.randint(0, 100)) / Decimal(10000)
        self.midnight = datetime.combine(day, time())
        self.rows: list[dict] = []

    def add(
        self, *, project: str | None, service: dict, sku: str, start: datetime, hours: int, quantity: Decimal,
        usage: tuple[Decimal, str, str], labels: dict[str, str] | None = None,
        system_labels: dict[str, str] | None = None, location: dict | None = None, discounted: bool = True,
        credits: list[tuple[str, Decimal]] = (),
    ) -> dict:
        sku_id, sku_desc, usd_price = SKUS[sku]
        list_eur = usd_price * quantity * self.rate
        cost = list_eur * (1 - NEGOTIATED_DISCOUNT) if discounted else list_eur
        end = start + timedelta(hours=hours)
        amount, unit, pricing_unit = usage
        row = {
            "billing_account_id": org.GCP_BILLING_ACCOUNT,
            "service": dict(service),
            "sku": {"id": sku_id, "description": sku_desc},
            "usage_start_time": _iso(start),
            "usage_end_time": _iso(end),
            "project": _project(project) if project else None,
            "labels": _kv(labels or {}),
            "system_labels": _kv(system_labels or {}),
            "location": dict(location or NO_LOCATION),
            "transaction_type": "GOOGLE",
            "seller_name": None,
            "export_time": _iso(end + timedelta(seconds=self.r.randint(2 * 3600, 6 * 3600),
                                                microseconds=self.r.randint(0, 999_999))),
            "cost": _money(cost),
            "currency": org.GCP_CURRENCY,
            "currency_conversion_rate": float(self.rate),
            "usage": {"amount": float(amount), "unit": unit, "amount_in_pricing_units": float(quantity),
                      "pricing_unit": pricing_unit},
            "credits": [_credit(kind, -(Decimal(str(_money(cost))) * share)) for kind, share in credits],
            "invoice": {"month": _invoice_month(start)},
            "cost_type": "regular",
            "adjustment_info": None,
            "cost_at_list": _money(list_eur),
        }
        self.rows.append(row)
        return row

    def hour(self, h: int) -> datetime:
        return self.midnight + timedelta(hours=h)


def _credit(kind: str, amount: Decimal) -> dict:
    if kind == "SUSTAINED_USAGE_DISCOUNT":
        return {"name": "Sustained Usage Discount", "amount": _money(amount), "full_name": None, "id": "",
                "type": kind}
    return {"name": "Vertex AI and Compute launch promotion", "amount": _money(amount),
            "full_name": "Promotional credit: ML launch program 2026", "id": "PROMO-ACME-ML-2026", "type": kind}


def _invoice_month(usage_start: datetime) -> str:
    # Invoice months are Pacific time: the first UTC hours of a month still belong to the previous invoice.
    return usage_start.replace(tzinfo=UTC).astimezone(_PACIFIC).strftime("%Y%m")


def _seconds(n: int | Decimal) -> tuple[Decimal, str, str]:
    return Decimal(n) * 3600, "seconds", "hour"


def _gpu_pool(d: _Day) -> None:
    system = {"compute.googleapis.com/machine_spec": "a2-highgpu-1g", "compute.googleapis.com/cores": "12"}
    for node in range(GPU_POOL_NODES):
        for h in range(24):
            labels = {"cluster": org.SHARED_GPU_CLUSTER, "node": f"gpu-node-{node}"}
            for sku, qty in (("a100", Decimal(1)), ("a2core", Decimal(12))):
                d.add(project="acme-shared-ml", service=COMPUTE, sku=sku, start=d.hour(h), hours=1, quantity=qty,
                      usage=_seconds(qty), labels=labels, system_labels=system, location=US_CENTRAL)


def _dedicated_gpu(d: _Day) -> None:
    start, length = d.r.randint(0, 14), d.r.randint(3, 8)
    labels = {"project": _label_value("recsys", d.r), "workload": "training"}
    system = {"compute.googleapis.com/machine_spec": "a2-highgpu-1g"}
    for h in range(start, start + length):
        for sku, qty in (("a100", Decimal(1)), ("a2core", Decimal(12))):
            d.add(project="acme-recsys-prod", service=COMPUTE, sku=sku, start=d.hour(h), hours=1, quantity=qty,
                  usage=_seconds(qty), labels=labels, system_labels=system, location=US_CENTRAL)


def _cpu_vms(d: _Day) -> None:
    system = {"compute.googleapis.com/machine_spec": "n2-standard-8", "compute.googleapis.com/cores": "8"}
    promo_hours = set(d.r.sample(range(24), d.r.randint(1, 6)))
    for h in range(24):
        credits = [("SUSTAINED_USAGE_DISCOUNT", Decimal("0.20"))]
        if h in promo_hours:
            credits.append(("PROMOTION", Decimal("0.10")))
        d.add(project="acme-search", service=COMPUTE, sku="n2core", start=d.hour(h), hours=1, quantity=Decimal(8),
              usage=_seconds(8), labels={"proj": "search-ranking", "app": "search-api"}, system_labels=system,
              location=EU_WEST, credits=credits)
        d.add(project="acme-forecasting", service=COMPUTE, sku="n2core", start=d.hour(h), hours=1,
              quantity=Decimal(8), usage=_seconds(8), system_labels=system, location=EU_WEST,
              credits=[("SUSTAINED_USAGE_DISCOUNT", Decimal("0.20"))])


def _vertex(d: _Day) -> None:
    jobs = [("acme-forecasting", "demand-forecast", "forecast-tft", "project", EU_WEST)]
    if d.r.random() < 0.6:
        jobs.append(("acme-recsys-prod", "recsys", "recsys-two-tower", "proj", US_CENTRAL))
    for project_id, project, model, key, location in jobs:
        start, length = d.r.randint(0, 18), d.r.randint(2, 5)
        for h in range(start, start + length):
            d.add(project=project_id, service=VERTEX, sku="vtrain", start=d.hour(h), hours=1, quantity=Decimal(1),
                  usage=_seconds(1), labels={key: _label_value(project, d.r), "model": model,
                                             "workload": "training"}, location=location)
    endpoints = [("acme-search", "search-ranking", "ranker-lambdamart", "proj", []),
                 ("acme-recsys-prod", "recsys", "recsys-two-tower", "project", [("PROMOTION", Decimal("0.10"))])]
    for project_id, project, model, key, credits in endpoints:
        nodes = Decimal(d.r.randint(1, 3))
        for h in range(24):
            d.add(project=project_id, service=VERTEX, sku="vpred", start=d.hour(h), hours=1, quantity=nodes,
                  usage=_seconds(nodes), labels={key: project, "model": model, "workload": "serving"},
                  location=US_CENTRAL, credits=credits)


def _storage(d: _Day) -> None:
    buckets = [("acme-recsys-prod", {"project": "recsys", "data": "features"}, 1800),
               ("acme-search", {"proj": "search-ranking"}, 950),
               ("acme-forecasting", {"project": "demand-forecast"}, 420),
               ("acme-shared-ml", None, 5200)]  # the platform bucket nobody labelled
    for project_id, labels, gib in buckets:
        gib_months = Decimal(gib) * 6 / 730  # 6 hours of a 730-hour month
        for h in (0, 6, 12, 18):
            byte_seconds = Decimal(gib) * 2**30 * 6 * 3600
            d.add(project=project_id, service=STORAGE, sku="gcs", start=d.hour(h), hours=6,
                  quantity=gib_months.quantize(Decimal("0.000000001")),
                  usage=(byte_seconds, "byte-seconds", "gibibyte month"), labels=labels, location=US_MULTI,
                  discounted=False)


def _bigquery(d: _Day) -> None:
    for h in sorted(d.r.sample(range(24), d.r.randint(2, 5))):
        tib = Decimal(d.r.randint(50, 900)) / 1000
        d.add(project="acme-shared-ml", service=BIGQUERY, sku="bq", start=d.hour(h), hours=1, quantity=tib,
              usage=(tib * 2**40, "bytes", "tebibyte"), labels={"proj": _label_value("churn", d.r)},
              location=US_MULTI, discounted=False)
    for h in sorted(d.r.sample(range(24), d.r.randint(1, 3))):
        tib = Decimal(d.r.randint(10, 300)) / 1000
        d.add(project="acme-forecasting", service=BIGQUERY, sku="bq", start=d.hour(h), hours=1, quantity=tib,
              usage=(tib * 2**40, "bytes", "tebibyte"), location=US_MULTI, discounted=False)


def _adjustment_and_tax(d: _Day) -> None:
    if d.day.day == 15:
        row = d.add(project="acme-search", service=VERTEX, sku="vpred", start=d.hour(0), hours=24,
                    quantity=Decimal(0), usage=(Decimal(0), "seconds", "hour"), location=US_CENTRAL)
        row.update(cost=-12.5, cost_at_list=None, cost_type="adjustment", usage=None, adjustment_info={
            "id": f"ADJ-{d.day:%Y%m%d}", "description": "Goodwill credit for endpoint latency incident",
            "mode": "COMPLETE_NEGATION", "type": "GOODWILL"})
    net = sum((Decimal(str(row["cost"])) + sum((Decimal(str(c["amount"])) for c in row["credits"]), Decimal(0))
               for row in d.rows), Decimal(0))
    tax = d.add(project=None, service=INVOICE, sku="tax", start=d.hour(0), hours=24, quantity=Decimal(0),
                usage=(Decimal(0), "", ""), discounted=False)
    tax.update(cost=_money(net * TAX_RATE), cost_at_list=None, cost_type="tax", usage=None)


def export_rows(day: date) -> list[dict]:
    """The billing export rows whose usage starts on `day` (UTC), deterministic for the day."""
    d = _Day(day)
    for part in (_gpu_pool, _dedicated_gpu, _cpu_vms, _vertex, _storage, _bigquery, _adjustment_and_tax):
        part(d)
    return d.rows
