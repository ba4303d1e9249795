"""Reference data of the synthetic FOCUS day (bench/generate_focus.py): providers, accounts, services, tags.

Four providers as their FOCUS exports name themselves (ProviderName AWS, Google Cloud, Microsoft, Oracle),
each with its billing account, sub accounts (the sample organization's, `org`, first, so every rule of
rules/allocation.yaml that names an account has charges), four regions and one service/SKU per kind of line.
Service names are the ones rules/allocation.yaml selects on (its pools were written against them); the other
SKU ids, prices and descriptive values are plausible, not copied from a provider's price list.

Tags are FOCUS KeyValueFormat JSON objects, written compactly as exporters do. Resources share their team's
tag set, as in real exports: per provider TAG_SETS sets (project x key spelling x value spelling x
environment), plus the shared GPU cluster's `{"cluster":"gpu-shared"}` at index TAG_SETS. Spellings follow
each provider's rules: GCP label keys and values are lower-case (`Project` and `Fraud Detection` only appear
on the other clouds).
"""

from __future__ import annotations

import json
import re

import polars as pl

from mlcost_pipeline.sources.sample import org

AWS, GCP, AZURE, OCI = range(4)
# Kinds of line. Hourly resources: 0-6; daily-grain services: 7-12; commitment lines: 13-14.
SHARED, SHARED_CORE, GPU, VM, DISK, LB, DB = range(7)
STORAGE, NETWORK, MARKETPLACE, PLATFORM, SUPPORT, TAX = range(7, 13)
PURCHASE, UNUSED = 13, 14
KINDS = 15

# p -> (ProviderName, BillingAccountId, BillingAccountName, BillingAccountType, SubAccountType, currency)
PROVIDERS = {
    AWS: ("AWS", org.AWS_PAYER_ACCOUNT, "acme-payer", "Management Account", "Member Account", "USD"),
    GCP: ("Google Cloud", org.GCP_BILLING_ACCOUNT, "Acme ML billing", "Billing Account", "Project",
          org.GCP_CURRENCY),
    AZURE: ("Microsoft", org.AZURE_BILLING_ACCOUNT, "Acme ML EA", "Billing Account", "Subscription", "USD"),
    OCI: ("Oracle", org.OCI_TENANCY, "acmeml", "Tenancy", "Compartment", "USD"),
}
REGIONS = {
    AWS: (("us-east-1", "US East (N. Virginia)"), ("us-west-2", "US West (Oregon)"),
          ("eu-west-1", "Europe (Ireland)"), ("ap-northeast-1", "Asia Pacific (Tokyo)")),
    GCP: (("us-central1", "Iowa"), ("europe-west4", "Netherlands"), ("us-east4", "Northern Virginia"),
          ("asia-northeast1", "Tokyo")),
    AZURE: (("eastus", "East US"), ("westeurope", "West Europe"), ("westus2", "West US 2"),
            ("northeurope", "North Europe")),
    OCI: (("us-ashburn-1", "US East (Ashburn)"), ("eu-frankfurt-1", "Germany Central (Frankfurt)"),
          ("us-phoenix-1", "US West (Phoenix)"), ("ap-tokyo-1", "Japan East (Tokyo)")),
}  # fmt: skip
# The sub account the shared GPU cluster runs in (index into `accounts`): the one its pool selects.
SHARED_ACCOUNT = {AWS: 1, GCP: 3, AZURE: 0}
PLATFORM_ACCOUNT = 2  # AWS 333333333333: never tagged (the platform-overhead pool)

# kind -> (ServiceCategory, ServiceSubcategory, ResourceType, unit, list price per unit, quantity multiplier)
_KIND = {
    SHARED: ("Compute", "Virtual Machines", "Instance", "Hours", "32.7726", 1),
    SHARED_CORE: ("Compute", "Virtual Machines", "Instance", "Hours", "0.031611", 12),
    GPU: ("Compute", "Virtual Machines", "Instance", "Hours", "5.672", 1),
    VM: ("Compute", "Virtual Machines", "Instance", "Hours", "0.096", 1),
    DISK: ("Storage", "Block Storage", "Volume", "GB-Months", "0.08", 1),
    LB: ("Networking", "Other (Networking)", "Load Balancer", "LCU-Hours", "0.008", 1),
    DB: ("Databases", "Relational Databases", "Database Instance", "Hours", "0.26", 1),
    STORAGE: ("Storage", "Object Storage", "Bucket", "GB-Months", "0.023", 1),
    NETWORK: ("Networking", "Network Connectivity", None, "GB", "0.09", 1),
    MARKETPLACE: ("Management and Governance", "Observability", None, "Hosts", "0.75", 1),
    PLATFORM: ("Management and Governance", "Observability", None, "GB", "0.5", 1),
    SUPPORT: ("Other", "Other (Other)", None, None, None, 1),
    TAX: ("Other", "Other (Other)", None, None, None, 1),
    PURCHASE: ("Compute", "Virtual Machines", None, "Hours", None, 1),
    UNUSED: ("Compute", "Virtual Machines", None, "Hours", None, 1),
}
# provider -> kind -> (ServiceName, SkuId, ChargeDescription); the pools' own services and SKUs
EC2 = "Amazon Elastic Compute Cloud - Compute"
SAVINGS_PLANS = "Savings Plans for AWS Compute usage"
_SERVICES = {
    AWS: {SHARED: (EC2, "P4D-USE1-BoxUsage", "p4d.24xlarge On Demand Linux"),
          GPU: (EC2, "G5-BoxUsage", "g5.12xlarge On Demand Linux"),
          VM: (EC2, "M5-BoxUsage", "m5.large On Demand Linux"),
          DISK: ("EC2 - Other", "EBS-VolumeUsage.gp3", "gp3 provisioned storage"),
          LB: ("Elastic Load Balancing", "ELB-LCUUsage", "Application load balancer capacity units"),
          DB: ("Amazon Relational Database Service", "RDS-InstanceUsage", "db.r6g.large PostgreSQL"),
          STORAGE: ("Amazon Simple Storage Service", "S3-TimedStorage", "S3 Standard storage"),
          NETWORK: ("AWS Data Transfer", "DataTransfer-Out-Bytes", "Data transfer out to the internet"),
          MARKETPLACE: ("Datadog Pro (AWS Marketplace)", "DD-PRO-HOST", "Datadog Pro hosts"),
          PLATFORM: ("AmazonCloudWatch", "CW-DataProcessing-Bytes", "CloudWatch Logs ingestion"),
          SUPPORT: ("AWS Support (Business)", "SUPPORT-BUSINESS", "AWS Support (Business)"),
          TAX: ("Tax", None, "Sales tax"),
          PURCHASE: (SAVINGS_PLANS, "SP-COMPUTE-1Y", "Compute Savings Plan, hourly fee"),
          UNUSED: (SAVINGS_PLANS, "SP-COMPUTE-1Y", "Unused Savings Plan commitment")},
    GCP: {SHARED: ("Compute Engine", "A1C0-0001-GPU1", "Nvidia Tesla A100 GPU running in Americas"),
          SHARED_CORE: ("Compute Engine", "A2C0-0002-CORE", "A2 Instance Core running in Americas"),
          GPU: ("Compute Engine", "L4C0-0010-GPU1", "Nvidia L4 GPU running in Americas"),
          VM: ("Compute Engine", "N2C0-0003-CORE", "N2 Instance Core running in Americas"),
          DISK: ("Compute Engine", "PDB0-0011-SSD1", "SSD backed PD Capacity"),
          LB: ("Networking", "LBF0-0012-RUL1", "Network Load Balancing: Forwarding Rule"),
          DB: ("Cloud SQL", "SQL0-0013-PG01", "Cloud SQL for PostgreSQL: vCPU"),
          STORAGE: ("Cloud Storage", "GCS0-0006-STD1", "Standard Storage US Multi-region"),
          NETWORK: ("Networking", "NET0-0014-EGR1", "Network Internet Egress from Americas"),
          MARKETPLACE: ("Elastic Cloud (Google Cloud Marketplace)", "ELC0-0015-STD1", "Elastic Cloud"),
          PLATFORM: ("Cloud Logging", "LOG0-0016-ING1", "Log Volume"),
          SUPPORT: ("Support", "SUP0-0017-ENH1", "Enhanced Support"),
          TAX: ("Tax", None, "Tax"),
          PURCHASE: ("Compute Engine", "CUD0-0018-N2C1", "Commitment v1: N2 Cpu in Americas for 1 Year"),
          UNUSED: ("Compute Engine", "CUD0-0018-N2C1", "Commitment v1: N2 Cpu, unused")},
    AZURE: {SHARED: ("Virtual Machines", "DZH318Z0BQPS", "NC24ads A100 v4"),
            GPU: ("Virtual Machines", "DZH318Z0BQ4F", "NC4as T4 v3"),
            VM: ("Virtual Machines", "DZH318Z0BPVW", "D4s v5"),
            DISK: ("Storage", "DZH318Z0BP88", "P30 LRS Disk"),
            LB: ("Load Balancer", "DZH318Z0BNXJ", "Standard Data Processed"),
            DB: ("SQL Database", "DZH318Z0BQ01", "vCore, General Purpose Gen5"),
            STORAGE: ("Storage", "DZH318Z0BNVX", "Hot LRS Data Stored"),
            NETWORK: ("Bandwidth", "DZH318Z0BNVB", "Standard Data Transfer Out"),
            MARKETPLACE: ("Databricks (Azure Marketplace)", "DBX0-PREMIUM", "Premium All-purpose Compute"),
            PLATFORM: ("Log Analytics", "DZH318Z0BNQ4", "Analytics Logs Data Ingestion"),
            SUPPORT: ("Azure Support", "SUPPORT-STANDARD", "Standard support"),
            TAX: ("Tax", None, "Tax"),
            PURCHASE: ("Virtual Machines", "DZH318Z0BQPS-RI", "Reserved VM Instance, 1 year, monthly"),
            UNUSED: ("Virtual Machines", "DZH318Z0BQPS-RI", "Unused reservation")},
    OCI: {GPU: ("Compute", "B95909", "GPU A10 - BM.GPU.A10.4"),
          VM: ("Compute", "B93113", "Compute - Standard - E4 - OCPU"),
          DISK: ("Block Volume", "B91961", "Block Volume - Storage"),
          LB: ("Load Balancer", "B93030", "Load Balancer Base"),
          DB: ("Database", "B90570", "Autonomous Transaction Processing - ECPU"),
          STORAGE: ("Object Storage", "B91628", "Object Storage - Storage"),
          NETWORK: ("Networking", "B88327", "Outbound Data Transfer Zone 1"),
          MARKETPLACE: ("Marketplace", "MKT-0001", "Marketplace image license"),
          PLATFORM: ("Logging", "B92593", "Logging - Storage"),
          SUPPORT: ("Support", "SUP-0001", "Premier support"),
          TAX: ("Tax", None, "Sales tax"),
          PURCHASE: ("Compute", "B93113-C", "Annual Universal Credits"),
          UNUSED: ("Compute", "B93113-C", "Unused commitment")},
}  # fmt: skip
# provider -> kind -> (service part, type part) of the ResourceId (generate_focus.py assembles it)
_IDS = {
    AWS: {SHARED: ("ec2", "instance/i-0"), GPU: ("ec2", "instance/i-0"), VM: ("ec2", "instance/i-0"),
          DISK: ("ec2", "volume/vol-0"), LB: ("elasticloadbalancing", "loadbalancer/app/lb-"),
          DB: ("rds", "db:db-"), STORAGE: ("s3", "acme-")},
    GCP: {SHARED: ("compute", "instances/gpu-shared-"), SHARED_CORE: ("compute", "instances/gpu-shared-"),
          GPU: ("compute", "instances/gpu-"), VM: ("compute", "instances/vm-"),
          DISK: ("compute", "disks/disk-"), LB: ("compute", "forwardingRules/lb-"),
          DB: ("sqladmin", "instances/sql-"), STORAGE: ("storage", "buckets/acme-")},
    AZURE: {SHARED: ("Microsoft.Compute", "virtualMachines/gpu-shared-"),
            GPU: ("Microsoft.Compute", "virtualMachines/gpu-"),
            VM: ("Microsoft.Compute", "virtualMachines/vm-"),
            DISK: ("Microsoft.Compute", "disks/disk-"), LB: ("Microsoft.Network", "loadBalancers/lb-"),
            DB: ("Microsoft.Sql", "servers/sql-"), STORAGE: ("Microsoft.Storage", "storageAccounts/st")},
    OCI: {GPU: ("", "instance"), VM: ("", "instance"), DISK: ("", "volume"), LB: ("", "loadbalancer"),
          DB: ("", "autonomousdatabase"), STORAGE: ("", "bucket")},
}  # fmt: skip
_PUBLISHERS = {AWS: "Datadog", GCP: "Elastic", AZURE: "Databricks", OCI: "Oracle"}
_GPUS = {(AWS, SHARED): ("p4d.24xlarge", 8), (AWS, GPU): ("g5.12xlarge", 4),
         (GCP, SHARED): ("a2-highgpu-1g", 1), (GCP, SHARED_CORE): ("a2-highgpu-1g", 1),
         (GCP, GPU): ("g2-standard-8", 1),
         (AZURE, SHARED): ("Standard_NC24ads_A100_v4", 1), (AZURE, GPU): ("Standard_NC4as_T4_v3", 1),
         (OCI, GPU): ("BM.GPU.A10.4", 4)}  # fmt: skip
# GCP bills its A100 by the second (the gcp-shared-gpu pool's capacity: seconds x 1/3600 = GPU-hours).
_OVERRIDES = {(GCP, SHARED): ("seconds", "0.0008149744", 3600), (OCI, GPU): ("GPU Hours", "2.00", 4)}
ENVIRONMENTS = ("prod", "dev", "staging")
KEY_SPELLINGS = ("project", "Project", "proj")
TAG_SETS = len(org.PROJECTS) * len(KEY_SPELLINGS) * 3 * len(ENVIRONMENTS)
CLUSTER_TAGS = {"cluster": org.SHARED_GPU_CLUSTER}


def kinds() -> pl.DataFrame:
    """One row per (p, k): the service, SKU, unit and list price of that provider's kind of line."""
    rows = []
    for p in PROVIDERS:
        for k in range(KINDS):
            services = _SERVICES[p]
            # a kind a provider lacks here (OCI's shared cluster) is never generated; its row mirrors GPU
            name, sku, description = services.get(k) or services.get(SHARED) or services[GPU]
            category, subcategory, rtype, unit, price, mult = _KIND[k]
            unit, price, mult = _OVERRIDES.get((p, k), (unit, price, mult))
            gpu = _GPUS.get((p, k))
            rid_service, rid_type = _IDS[p].get(k, (None, None))
            details = None
            if gpu:
                details = json.dumps({"GpuCount": gpu[1], "InstanceType": gpu[0]}, separators=(",", ":"))
            rows.append({"p": p, "k": k, "ServiceName": name, "ServiceCategory": category,
                         "ServiceSubcategory": subcategory, "ResourceType": rtype, "SkuId": sku,
                         "SkuPriceId": f"{sku}-{'OD' if k < PURCHASE else 'CMT'}" if sku else None,
                         "SkuMeter": unit, "unit": unit, "price": price, "mult": mult,
                         "ChargeDescription": description, "SkuPriceDetails": details,
                         "PublisherName": _PUBLISHERS[p] if k == MARKETPLACE else PROVIDERS[p][0],
                         "x_SkuMeterCategory": name if p == AZURE else None,
                         "rid_service": rid_service, "rid_type": rid_type,
                         "name_prefix": re.search(r"[A-Za-z-]*$", rid_type or "")[0] or None})  # fmt: skip
    return pl.DataFrame(rows, infer_schema_length=None)


def accounts(per_provider: int) -> pl.DataFrame:
    """`per_provider` sub accounts per provider (the sample organization's first, then generated ones)."""
    known = {AWS: list(org.AWS_ACCOUNTS.items()), GCP: [(k, v[0]) for k, v in org.GCP_PROJECTS.items()],
             AZURE: list(org.AZURE_SUBSCRIPTIONS.items()),
             OCI: [("ocid1.compartment.oc1..aaaaacmevisionqa", "vision-qa"),
                   ("ocid1.compartment.oc1..aaaaacmenetwork", "shared-network"),
                   ("ocid1.compartment.oc1..aaaaacmeplatform", "platform")]}  # fmt: skip
    generated = {AWS: lambda a: (f"{400000000000 + a}", f"acme-team-{a}"),
                 GCP: lambda a: (f"acme-ml-{a}", f"Acme ML {a}"),
                 AZURE: lambda a: (f"6f1c2b7e-{a:04d}-4c3a-9d1e-acme{a:08d}", f"acme-ml-azure-{a}"),
                 OCI: lambda a: (f"ocid1.compartment.oc1..aaaaacme{a:04d}", f"compartment-{a}")}  # fmt: skip
    rows = []
    for p in PROVIDERS:
        for a in range(per_provider):
            sub_id, sub_name = known[p][a] if a < len(known[p]) else generated[p](a)
            rows.append({"p": p, "a": a, "SubAccountId": sub_id, "SubAccountName": sub_name})
    return pl.DataFrame(rows, infer_schema_length=None)


def regions() -> pl.DataFrame:
    return pl.DataFrame([{"p": p, "g": g, "RegionId": rid, "RegionName": name}
                         for p, rs in REGIONS.items() for g, (rid, name) in enumerate(rs)])  # fmt: skip


def providers() -> pl.DataFrame:
    cols = ("ProviderName", "BillingAccountId", "BillingAccountName", "BillingAccountType", "SubAccountType",
            "BillingCurrency")
    return pl.DataFrame([{"p": p, **dict(zip(cols, v, strict=True))} for p, v in PROVIDERS.items()])


def _spellings(project: str, p: int) -> list[str]:
    spelled = (project, project.title(), project.replace("-", "_"))
    values = list(org.PROJECT_VALUE_VARIANTS.get(project, spelled))
    if p == GCP:  # GCP label values: lower-case letters, digits, '_' and '-'
        values = [v for v in values if re.fullmatch(r"[a-z0-9_-]+", v)] or [project]
    return [values[i % len(values)] for i in range(3)]


def tag_sets() -> pl.DataFrame:
    """(p, t) -> Tags JSON and the Azure resource group; t < TAG_SETS tagged, TAG_SETS the GPU cluster."""
    rows = []
    for p in PROVIDERS:
        t = 0
        for i, project in enumerate(org.PROJECTS):
            model = next((m for m, owner in org.MODELS.items() if owner == project), None)
            for spelling in KEY_SPELLINGS:
                key = spelling.lower() if p == GCP else spelling  # GCP label keys are lower-case
                for value in _spellings(project, p):
                    for env in ENVIRONMENTS:
                        tags = {key: value, "team": f"team-{project.split('-')[0]}", "env": env}
                        if env == "prod":
                            tags["cost_center"] = f"cc-{1000 + 10 * i}"
                            if model:
                                tags["model"] = model
                        tags.update(_provider_keys(p, env))
                        rows.append({"p": p, "t": t, "Tags": json.dumps(tags, separators=(",", ":")),
                                     "rg": f"rg-{project}" if p == AZURE else None})
                        t += 1
        rows.append({"p": p, "t": TAG_SETS, "Tags": json.dumps(CLUSTER_TAGS, separators=(",", ":")),
                     "rg": "rg-shared-gpu" if p == AZURE else None})
    return pl.DataFrame(rows, infer_schema_length=None)


def _provider_keys(p: int, env: str) -> dict[str, str]:
    # Provider-defined tags carry the provider's prefix (FOCUS: only user tags go unprefixed).
    if p == AWS:
        return {"aws:createdBy": f"AssumedRole:AROAACME:{env}-deployer"}
    if p == GCP:
        return {"goog-k8s-cluster-name": f"ml-{env}"}
    if p == OCI:
        return {"Oracle-Tags.CreatedBy": f"{env}-ci@acme.example"}
    return {}
