"""Which GCP billing export table MLCOST_GCP_BILLING_TABLE names, and what its schema holds (from `tables.get`).

Source: the table's metadata (a free call), read before any query so that the query names only the fields and
struct members the table has. Three datasets: the standard usage cost table (`gcp_billing_export_v1_<ACCOUNT>`),
the detailed one (`gcp_billing_export_resource_v1_<ACCOUNT>`: every standard row plus `resource`, `price` ...),
and Google's native FOCUS export (`gcp_billing_export_focus_<ACCOUNT>` in `gcp_billing_immutable_<ACCOUNT>_<LOC>`).
Key: `ExportTable.fields`, every field path (`location.zone`, `credits.amount`) mapped to its BigQuery type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

SOURCE = "gcp_billing_export"
STANDARD, DETAILED, FOCUS = "standard", "detailed", "focus"
# project.dataset.table; a project id may carry a domain prefix (example.com:project). Names cannot be bound as
# query parameters, so only these characters get into the SQL.
_TABLE = re.compile(r"^(?P<project>[A-Za-z0-9.:_-]+)\.(?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[A-Za-z0-9_$-]+)$")
_NAMED = {FOCUS: re.compile(r"^gcp_billing_export_focus_", re.I),
          DETAILED: re.compile(r"^gcp_billing_export_resource_v1_", re.I),
          STANDARD: re.compile(r"^gcp_billing_export_v1_", re.I)}  # fmt: skip
# What the money, the day and the currency depend on: a table without one of these is refused.
REQUIRED = {
    STANDARD: ("billing_account_id", "service.description", "usage_start_time", "usage_end_time", "export_time",
               "cost", "currency", "credits.amount", "invoice.month", "cost_type"),
    FOCUS: ("ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "BillingCurrency"),
}  # fmt: skip
_TYPES = {"FLOAT": "FLOAT64", "INTEGER": "INT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def parse_table(table: str) -> tuple[str, str, str]:
    m = _TABLE.match(table or "")
    if not m:
        raise ValueError(f"MLCOST_GCP_BILLING_TABLE: expected project.dataset.table, got {table!r}")
    return m["project"], m["dataset"], m["table"]


def named_dataset(table: str) -> str | None:
    """The dataset a table's name says it holds (Google's names), None for any other name (a view, a copy)."""
    name = parse_table(table)[2]
    return next((kind for kind, pattern in _NAMED.items() if pattern.match(name)), None)


def the_table(setting: str | None) -> str:
    """The one table MLCOST_GCP_BILLING_TABLE names. Two or more are refused: the detailed table holds every row of
    the standard one (reading both counts each charge twice), and one run reads one billing account's export."""
    tables = [t for t in re.split(r"[\s,;]+", setting or "") if t]
    if not tables:
        raise ValueError("live mode needs MLCOST_GCP_BILLING_TABLE (project.dataset.table)")
    if len(tables) == 1:
        return tables[0]
    kinds = {named_dataset(t) for t in tables}
    if {STANDARD, DETAILED} <= kinds:
        detailed = next(t for t in tables if named_dataset(t) == DETAILED)
        raise ValueError(
            f"MLCOST_GCP_BILLING_TABLE names both the standard and the detailed billing export ({', '.join(tables)}): "
            "the detailed table holds every row of the standard one, so reading both would count each charge "
            f"twice. Name one table: the detailed one ({detailed}) keeps resource-level rows."
        )
    raise ValueError(f"MLCOST_GCP_BILLING_TABLE names {len(tables)} tables ({', '.join(tables)}); name exactly one "
                     "(project.dataset.table)")  # fmt: skip


def _paths(fields: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields:
        path = f"{prefix}{f.name}"
        typ = _TYPES.get(str(f.field_type).upper(), str(f.field_type).upper())
        out[path] = f"ARRAY<{typ}>" if str(getattr(f, "mode", "") or "").upper() == "REPEATED" else typ
        if typ == "RECORD":
            out.update(_paths(f.fields, path + "."))
    return out


@dataclass(frozen=True)
class ExportTable:
    """What the query needs to know about the export table."""

    table: str
    fields: dict[str, str]  # field path -> BigQuery type (ARRAY<RECORD> for a repeated record); names as stored
    partitioning: str | None  # "_PARTITIONTIME" (ingestion time), a partitioning column, or None
    dataset: str  # standard | detailed | focus

    @property
    def kind(self) -> str:
        return self.dataset

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(p for p in self.fields if "." not in p)

    def name_of(self, path: str) -> str | None:
        """The path as the table spells it (BigQuery names are case-insensitive), None when it has no such field."""
        return self._folded.get(path.lower())

    def has(self, path: str) -> bool:
        return self.name_of(path) is not None

    def type_of(self, path: str) -> str | None:
        name = self.name_of(path)
        return None if name is None else self.fields[name]

    @cached_property
    def _folded(self) -> dict[str, str]:
        return {p.lower(): p for p in self.fields}


def _dataset(table: str, fields: dict[str, str], kind: str) -> str:
    folded = {p.lower() for p in fields}
    if named_dataset(table) == FOCUS or {"billedcost", "chargeperiodstart"} <= folded:
        return FOCUS
    detailed = "resource" in folded
    if kind == DETAILED and not detailed:
        raise ValueError(f"{SOURCE}: MLCOST_GCP_EXPORT_KIND=detailed but {table} has no resource column")
    return DETAILED if detailed and kind != STANDARD else STANDARD


def describe_table(client: Any, table: str, kind: str = "auto", *, retry: Any = None,
                   timeout: float | None = None) -> ExportTable:  # fmt: skip
    """`tables.get` for the table; refuses one that lacks a field the money, day or currency depends on."""
    parse_table(table)
    meta = client.get_table(table, timeout=timeout, **({"retry": retry} if retry is not None else {}))
    fields = _paths(meta.schema)
    dataset = _dataset(table, fields, kind)
    folded = {p.lower() for p in fields}
    missing = [p for p in REQUIRED[FOCUS if dataset == FOCUS else STANDARD] if p.lower() not in folded]
    if missing:
        what = "a FOCUS billing export" if dataset == FOCUS else "a billing export"
        raise ValueError(f"{SOURCE}: table {table} is not {what}: column {missing[0]} is missing")
    partitioning = getattr(meta, "time_partitioning", None)
    column = None if partitioning is None else (getattr(partitioning, "field", None) or "_PARTITIONTIME")
    if dataset == STANDARD and "resource" in folded:  # MLCOST_GCP_EXPORT_KIND=standard on a detailed table
        fields = {p: t for p, t in fields.items() if p.split(".")[0].lower() != "resource"}
    return ExportTable(table, fields, column, dataset)


def bigquery_retry(deadline_seconds: float):
    """google-cloud-bigquery's own retry policy (5xx, 429, rateLimitExceeded/backendError, dropped connections,
    timeouts), bounded by MLCOST_GCP_RETRY_DEADLINE_SECONDS instead of its 10 minutes."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(deadline_seconds)
