"""The fictional ML organization behind every sample source ("Acme ML"), shared so the clouds and MLflow agree.

Eight projects and six models across AWS, GCP, Azure and one FOCUS-exporting provider (OCI), a shared GPU
cluster on each big cloud, a platform-overhead account, untagged resources, tag-key and tag-value spelling
variants, credits and tax lines, and GCP billing in EUR. Everything is a function of (seed, day, stream), so a
day's data is identical on every run and on every machine.
"""

from __future__ import annotations

import hashlib
import random
from datetime import date

SEED = 20261122

PROJECTS = (
    "fraud-detection",
    "churn",
    "recsys",
    "search-ranking",
    "demand-forecast",
    "llm-assistant",
    "vision-qa",
    "data-platform",
)

# model name -> owning project
MODELS = {
    "fraud-xgb": "fraud-detection",
    "churn-lgbm": "churn",
    "recsys-two-tower": "recsys",
    "ranker-lambdamart": "search-ranking",
    "forecast-tft": "demand-forecast",
    "assistant-llama": "llm-assistant",
}

# How teams actually spell things: the allocation rules must fold these back together.
PROJECT_TAG_KEYS = ("Project", "project", "proj")
PROJECT_VALUE_VARIANTS = {
    "churn": ("churn", "churn_pred", "Churn"),
    "fraud-detection": ("fraud-detection", "fraud_detection", "Fraud Detection"),
    "recsys": ("recsys", "recsys ", "RecSys"),
}

# The shared GPU cluster: tagged with the cluster, never with a project; split by MLflow GPU-hours.
SHARED_GPU_CLUSTER = "gpu-shared"

AWS_ACCOUNTS = {
    "111111111111": "acme-ml-prod",
    "222222222222": "acme-ml-research",
    "333333333333": "acme-platform-overhead",  # logging, networking, CI: no project tags at all
}
AWS_PAYER_ACCOUNT = "999999999999"

GCP_BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
GCP_CURRENCY = "EUR"  # the non-USD provider: rows carry currency_conversion_rate (1 USD = rate EUR)
GCP_PROJECTS = {  # project id -> (name, number)
    "acme-recsys-prod": ("Acme Recsys Prod", "410000000001"),
    "acme-search": ("Acme Search", "410000000002"),
    "acme-forecasting": ("Acme Forecasting", "410000000003"),
    "acme-shared-ml": ("Acme Shared ML", "410000000004"),
}

AZURE_BILLING_ACCOUNT = "8611537"
AZURE_SUBSCRIPTIONS = {
    "6f1c2b7e-0001-4c3a-9d1e-acme00000001": "acme-ml-azure",
}
AZURE_RESOURCE_GROUPS = ("rg-llm-assistant", "rg-vision-qa", "rg-shared-gpu", "rg-platform", "rg-churn")

OCI_TENANCY = "ocid1.tenancy.oc1..aaaaacmeml"

# instance type -> GPUs per instance
GPU_INSTANCE_TYPES = {
    "p4d.24xlarge": 8,
    "g5.12xlarge": 4,
    "g5.xlarge": 1,
    "a2-highgpu-1g": 1,
    "Standard_NC24ads_A100_v4": 1,
    "BM.GPU.A10.4": 4,
}


def rng(day: date, stream: str) -> random.Random:
    """A generator private to one (day, stream): adding a stream never shifts another's numbers."""
    digest = hashlib.sha256(f"{SEED}:{day.isoformat()}:{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def spelled(project: str, r: random.Random) -> str:
    """A project value as some team would type it."""
    variants = PROJECT_VALUE_VARIANTS.get(project)
    return r.choice(variants) if variants else project
