"""Sample FOCUS 1.2 export files for Acme ML on Oracle Cloud (OCI): one CSV per charge day.

Files: `<out_dir>/focus-1.2/oci/<YYYY-MM-DD>.csv`, a header with all 57 FOCUS 1.2 columns (spec order) followed
by two provider columns prefixed `oci_` (OCI's FOCUS reports carry such columns; the reader ignores them), dates
as `YYYY-MM-DDTHH:mm:ssZ`, money as plain decimals, Tags as a FOCUS JSON object. Grain: one row per charge as
OCI reports it (hourly compute and block volume, daily object storage, 6-hourly egress, a daily tax line).

Acme ML on OCI, every day:
- vision-qa GPU training on BM.GPU.A10.4 (4 GPUs) for part of the day, a second box on some days, with the
  attached block volume; tagged `{"proj":"vision-qa"}` or `{"Project":"Vision QA"}` depending on who launched it;
- a data-prep VM covered by Acme's annual spend commitment (PricingCategory Committed, BilledCost 0, the
  amortized amount in EffectiveCost, CommitmentDiscountStatus Used);
- object storage (the datasets bucket is tagged, the logs bucket is not) and untagged outbound data transfer;
- a preemptible GPU VM for vision-qa hyperparameter sweeps (OCI's spot capacity: PricingCategory Dynamic, half
  the on-demand price), one row for the hours it ran;
- OCI DevOps build minutes for the platform team (ServiceCategory Developer Tools: tooling spend);
- one Tax row. Everything is a function of `org.rng(day, "oci")`; rewriting a day gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES
from mlcost_pipeline.sources.sample import org

FOCUS_12_COLUMNS = [c for c in COLUMN_NAMES if not c.startswith("x_") and c not in
                    ("ServiceProviderName", "HostProviderName")]
PROVIDER_COLUMNS = ["oci_ReferenceNumber", "oci_CompartmentName"]
HEADER = FOCUS_12_COLUMNS + PROVIDER_COLUMNS

REGION = ("us-ashburn-1", "US East (Ashburn)")
AD = "US-ASHBURN-AD-1"
COMPARTMENTS = {  # name -> OCID
    "vision-qa": "ocid1.compartment.oc1..aaaaacmevisionqa",
    "shared-network": "ocid1.compartment.oc1..aaaaacmenetwork",
    "platform": "ocid1.compartment.oc1..aaaaacmeplatform",
}
COMMITMENT_ID = "ocid1.commitment.oc1.iad.aaaaacmeannualflex2026"
GPU_PRICE = (Decimal("2.00"), Decimal("1.80"))  # (list, contracted) USD per GPU hour
PREEMPTIBLE_GPU_PRICE = (Decimal("1.00"), Decimal("1.00"))  # OCI preemptible capacity: 50% of on-demand list
TAX_RATE = Decimal("0.06")
_Q = Decimal("0.000001")


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(x: Decimal) -> str:
    return format(x.quantize(_Q, rounding=ROUND_HALF_EVEN), "f")


def _month_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, 1)
    return start, datetime(day.year + day.month // 12, day.month % 12 + 1, 1)


class _File:
    def __init__(self, day: date) -> None:
        self.day = day
        self.r = org.rng(day, "oci")
        self.midnight = datetime.combine(day, time())
        self.rows: list[dict[str, str]] = []

    def add(self, *, start: datetime, hours: float, compartment: str, service: tuple[str, str, str],
            sku: tuple[str, str], quantity: Decimal, unit: str, prices: tuple[Decimal, Decimal],
            resource: tuple[str, str, str] | None = None, tags: dict | None = None, **extra: str) -> dict:
        list_price, contracted_price = prices
        list_cost, contracted = list_price * quantity, contracted_price * quantity
        period_start, period_end = _month_bounds(self.day)
        name, category, subcategory = service
        row = dict.fromkeys(HEADER, "")
        row.update({
            "AvailabilityZone": AD if resource else "",
            "BilledCost": _num(contracted), "EffectiveCost": _num(contracted),
            "ListCost": _num(list_cost), "ContractedCost": _num(contracted),
            "ListUnitPrice": _num(list_price), "ContractedUnitPrice": _num(contracted_price),
            "BillingAccountId": org.OCI_TENANCY, "BillingAccountName": "acmeml", "BillingAccountType": "Tenancy",
            "BillingCurrency": "USD", "PricingCurrency": "USD",
            "BillingPeriodStart": _ts(period_start), "BillingPeriodEnd": _ts(period_end),
            "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "ChargeDescription": sku[1],
            "ChargePeriodStart": _ts(start), "ChargePeriodEnd": _ts(start + timedelta(hours=hours)),
            "ConsumedQuantity": _num(quantity), "ConsumedUnit": unit,
            "PricingQuantity": _num(quantity), "PricingUnit": unit, "PricingCategory": "Standard",
            "InvoiceId": f"OCI-{self.day:%Y%m}-ACMEML", "InvoiceIssuerName": "Oracle",
            "ProviderName": "Oracle", "PublisherName": "Oracle",
            "RegionId": REGION[0], "RegionName": REGION[1],
            "ServiceName": name, "ServiceCategory": category, "ServiceSubcategory": subcategory,
            "SkuId": sku[0], "SkuPriceId": f"{sku[0]}-PAYG", "SkuMeter": unit,
            "SubAccountId": COMPARTMENTS[compartment], "SubAccountName": compartment,
            "SubAccountType": "Compartment",
            "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":")) if tags else "",
            "oci_ReferenceNumber": f"{self.r.getrandbits(64):016x}", "oci_CompartmentName": compartment,
        })
        if resource:
            row["ResourceId"], row["ResourceName"], row["ResourceType"] = resource
        row.update(extra)
        self.rows.append(row)
        return row

    def hour(self, h: float) -> datetime:
        return self.midnight + timedelta(hours=h)


def _project_tags(f: _File, launched_by: str) -> dict:
    tags = {"proj": "vision-qa"} if f.r.random() < 0.5 else {"Project": "Vision QA"}
    tags["Oracle-Tags.CreatedBy"] = launched_by
    return tags


def _gpu_training(f: _File) -> None:
    boxes = [("vqa-train-01", f.r.randint(0, 6), f.r.randint(8, 16))]
    if f.r.random() < 0.5:
        boxes.append(("vqa-train-02", f.r.randint(8, 14), f.r.randint(4, 10)))
    for name, first, length in boxes:
        tags = _project_tags(f, f"{name.split('-')[0]}-ci@acme.example")
        gpus = org.GPU_INSTANCE_TYPES["BM.GPU.A10.4"]
        instance = (f"ocid1.instance.oc1.iad.aaaaacme{name.replace('-', '')}", name, "Instance")
        volume = (f"ocid1.bootvolume.oc1.iad.aaaaacme{name.replace('-', '')}", f"{name}-boot", "Boot Volume")
        for h in range(first, min(first + length, 24)):
            f.add(start=f.hour(h), hours=1, compartment="vision-qa",
                  service=("Compute", "Compute", "Virtual Machines"), sku=("B95909", "GPU A10 - BM.GPU.A10.4"),
                  quantity=Decimal(gpus), unit="GPU Hours", prices=GPU_PRICE, resource=instance, tags=tags,
                  SkuPriceDetails=json.dumps({"GpuCount": gpus, "InstanceType": "BM.GPU.A10.4"},
                                             separators=(",", ":")))
            f.add(start=f.hour(h), hours=1, compartment="vision-qa",
                  service=("Block Volume", "Storage", "Block Storage"), sku=("B91961", "Block Volume - Storage"),
                  quantity=(Decimal(500) / 730).quantize(_Q), unit="GB-Months", prices=(Decimal("0.0255"),) * 2,
                  resource=volume, tags=tags)


def _committed_vm(f: _File) -> None:
    ocpus = Decimal(8)
    row = f.add(start=f.hour(0), hours=24, compartment="vision-qa",
                service=("Compute", "Compute", "Virtual Machines"), sku=("B93113", "Compute - Standard - E4 - OCPU"),
                quantity=ocpus * 24, unit="OCPU Hours", prices=(Decimal("0.025"), Decimal("0.025")),
                resource=("ocid1.instance.oc1.iad.aaaaacmevqadataprep", "vqa-dataprep-01", "Instance"),
                tags={"project": "vision-qa"})
    row.update({
        "BilledCost": _num(Decimal(0)), "PricingCategory": "Committed",
        "CommitmentDiscountId": COMMITMENT_ID, "CommitmentDiscountName": "Acme Annual Flex 2026",
        "CommitmentDiscountCategory": "Spend", "CommitmentDiscountType": "Annual Universal Credits",
        "CommitmentDiscountStatus": "Used", "CommitmentDiscountQuantity": row["EffectiveCost"],
        "CommitmentDiscountUnit": "USD",
    })


def _storage_and_network(f: _File) -> None:
    for bucket, gb, tags in (("vqa-datasets", 4200 + f.r.randint(0, 300), {"proj": "vision-qa"}),
                             ("acme-oci-logs", 900 + f.r.randint(0, 50), None)):
        f.add(start=f.hour(0), hours=24, compartment="vision-qa" if tags else "platform",
              service=("Object Storage", "Storage", "Object Storage"), sku=("B91628", "Object Storage - Storage"),
              quantity=(Decimal(gb) * 24 / 730).quantize(_Q), unit="GB-Months", prices=(Decimal("0.0255"),) * 2,
              resource=(f"ocid1.bucket.oc1.iad.{bucket}", bucket, "Bucket"), tags=tags)
    for h in (0, 6, 12, 18):
        gb = Decimal(f.r.randint(20, 400))
        f.add(start=f.hour(h), hours=6, compartment="shared-network",
              service=("Networking", "Networking", "Network Connectivity"),
              sku=("B88327", "Outbound Data Transfer Zone 1"), quantity=gb, unit="GB",
              prices=(Decimal("0.0085"),) * 2)


def _preemptible_sweep(f: _File) -> None:
    first, hours = f.r.randint(0, 10), f.r.randint(2, 8)
    tags = {"proj": "vision-qa", "workload": "tuning", "Oracle-Tags.CreatedBy": "vqa-sweeps@acme.example"}
    gpus = 2
    row = f.add(start=f.hour(first), hours=hours, compartment="vision-qa",
                service=("Compute", "Compute", "Virtual Machines"), sku=("B95910", "GPU A10 - Preemptible"),
                quantity=Decimal(gpus * hours), unit="GPU Hours", prices=PREEMPTIBLE_GPU_PRICE,
                resource=("ocid1.instance.oc1.iad.aaaaacmevqasweep01", "vqa-sweep-01", "Instance"), tags=tags,
                SkuPriceDetails=json.dumps({"GpuCount": gpus, "InstanceType": "VM.GPU.A10.2"}, separators=(",", ":")))
    row["PricingCategory"] = "Dynamic"  # FOCUS: spot / preemptible pricing


def _devops_builds(f: _File) -> None:
    minutes = Decimal(f.r.randint(300, 900))
    f.add(start=f.hour(0), hours=24, compartment="platform",
          service=("DevOps", "Developer Tools", "Continuous Integration and Deployment"), sku=("B92985", "DevOps - Build Minutes"),
          quantity=minutes, unit="Minutes", prices=(Decimal("0.0085"),) * 2, tags={"project": "data-platform"})


def _tax(f: _File) -> None:
    billed = sum((Decimal(r["BilledCost"]) for r in f.rows), Decimal(0))
    amount = _num(billed * TAX_RATE)
    row = f.add(start=f.hour(0), hours=24, compartment="platform", service=("Tax", "Other", "Other (Other)"),
                sku=("", "Sales tax"), quantity=Decimal(0), unit="", prices=(Decimal(0),) * 2)
    row.update({"BilledCost": amount, "EffectiveCost": amount, "ListCost": amount, "ContractedCost": amount,
                "ChargeCategory": "Tax", "ChargeFrequency": "Recurring", "PricingCategory": "",
                "ConsumedQuantity": "", "ConsumedUnit": "", "PricingQuantity": "", "PricingUnit": "",
                "ListUnitPrice": "", "ContractedUnitPrice": "", "SkuId": "", "SkuPriceId": "", "SkuMeter": ""})


def focus_csv(day: date) -> bytes:
    """One day's FOCUS 1.2 CSV, byte for byte."""
    f = _File(day)
    for part in (_gpu_training, _committed_vm, _storage_and_network, _preemptible_sweep, _devops_builds, _tax):
        part(f)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(f.rows)
    return buf.getvalue().encode()


def write_focus_export(days: Sequence[date], out_dir: Path) -> list[Path]:
    """Write `focus-1.2/oci/<day>.csv` for each day; a file that already holds the same bytes is left alone."""
    paths = []
    for day in days:
        path = Path(out_dir) / "focus-1.2" / "oci" / f"{day.isoformat()}.csv"
        data = focus_csv(day)
        if not (path.exists() and path.read_bytes() == data):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{datetime.now(UTC):%H%M%S%f}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
        paths.append(path)
    return paths
