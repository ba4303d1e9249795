"""Settings read from the environment (MLCOST_*), resolved when asked for, never at import time.

Credentials are never read here: each SDK finds its own through its standard chain. KNOWN_SETTINGS lists every
MLCOST_* variable the project reads; any other MLCOST_* variable in the environment is most likely a typo, and is
reported once per process (warn_unknown_settings) with the closest known name.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ALL_SOURCES = ("aws", "gcp", "azure", "focus", "mlflow")
SAMPLE = "sample"
DEFAULT_AWS_METRICS = ("UnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity")
DEFAULT_KPI_METRICS = ("accuracy", "customer_retention_lift")
DEFAULT_KPI_QUALITY_METRIC = "accuracy"
DEFAULT_PARTITIONS_START = "2025-01-01"

# Every MLCOST_* variable read anywhere (package, bench, Makefile, tests); each is documented in README.md's
# settings tables or under docs/ (mlcost_pipeline_tests/test_settings_known.py holds both lists equal).
KNOWN_SETTINGS = (
    "MLCOST_WAREHOUSE_PATH", "MLCOST_SOURCES", "MLCOST_RULES", "MLCOST_REPORTING_CURRENCY", "MLCOST_RESTATEMENT_DAYS",
    "MLCOST_SAMPLE_DIR", "MLCOST_DUCKDB_MEMORY_LIMIT", "MLCOST_PARTITIONS_START", "MLCOST_KPI_METRICS",
    "MLCOST_KPI_QUALITY_METRIC", "MLCOST_BUDGETS", "MLCOST_BUDGET_ALERT_ON", "MLCOST_BUDGET_WEBHOOK_URL",
    "MLCOST_AWS_ENDPOINT_URL", "MLCOST_AWS_REGION", "MLCOST_AWS_ACCOUNTS", "MLCOST_AWS_PAYER_ACCOUNT",
    "MLCOST_AWS_TAG_KEY", "MLCOST_AWS_GROUP_BY", "MLCOST_AWS_METRICS", "MLCOST_AWS_MAX_REQUESTS",
    "MLCOST_AWS_MAX_ATTEMPTS", "MLCOST_GCP_BILLING_TABLE", "MLCOST_GCP_EXPORT_KIND", "MLCOST_GCP_QUERY_PROJECT",
    "MLCOST_GCP_QUERY_LOCATION", "MLCOST_GCP_MAX_BYTES_BILLED", "MLCOST_GCP_LIST_PRICES",
    "MLCOST_GCP_RETRY_DEADLINE_SECONDS", "MLCOST_GCP_TIMEOUT_SECONDS", "MLCOST_BIGQUERY_API_ENDPOINT",
    "MLCOST_CLOUD_BILLING_API_ENDPOINT", "MLCOST_AZURE_SCOPES", "MLCOST_AZURE_BASE_URL", "MLCOST_AZURE_CA_BUNDLE",
    "MLCOST_AZURE_CREDENTIAL_SCOPE", "MLCOST_AZURE_TAG_KEY", "MLCOST_AZURE_MAX_RETRIES",
    "MLCOST_AZURE_MAX_WAIT_SECONDS", "MLCOST_AZURE_TIMEOUT_SECONDS", "MLCOST_FOCUS_PATH", "MLCOST_FOCUS_CACHE_DIR",
    "MLCOST_LAKE_DIR",
    # test and CI hooks (docs/reliability.md, docs/operations.md)
    "MLCOST_FAULT_PAUSE_IN_WRITE", "MLCOST_UI_TEST", "MLCOST_UI_SCREENSHOT",
)  # fmt: skip
_PREFIX = "MLCOST_"
_warned: set[str] = set()
_log = logging.getLogger(__name__)


def unknown_settings(env: Mapping[str, str]) -> dict[str, str | None]:
    """MLCOST_* variables of `env` that the project does not read -> the closest known name (None if none is close)."""
    known = set(KNOWN_SETTINGS)
    out = {}
    for name in sorted(n for n in env if n.upper().startswith(_PREFIX) and n not in known):
        close = difflib.get_close_matches(name.upper(), KNOWN_SETTINGS, n=1, cutoff=0.6)
        out[name] = close[0] if close else None
    return out


def unknown_setting_message(name: str, closest: str | None) -> str:
    hint = f"did you mean {closest}?" if closest else "the settings are listed in README.md (Settings)"
    return f"{name} is not a setting of mlcost-pipeline and is ignored; {hint}"


def warn_unknown_settings(
    env: Mapping[str, str] | None = None, emit: Callable[[str], None] | None = None
) -> list[str]:
    """Report each unknown MLCOST_* variable once per process (the CLI prints, a code location logs); return the
    messages reported by this call."""
    found = unknown_settings(os.environ if env is None else env)
    messages = [unknown_setting_message(n, c) for n, c in found.items() if n not in _warned]
    _warned.update(found)
    for message in messages:
        (emit or _log.warning)(message)
    return messages


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (raw or "").split(",") if s.strip())


def _flag(raw: str | None, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a true/false value: {raw!r}")


@dataclass(frozen=True)
class ConnectorSettings:
    """Where the live sources are and how hard they may be asked (docs/connectors.md lists each variable).

    Endpoint overrides exist for VPC endpoints, sovereign clouds and proxies, and point tests at local stand-ins.
    """

    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_accounts: tuple[str, ...] = ()  # empty: one query series for the whole organization
    aws_payer_account: str | None = None
    aws_tag_key: str = "Project"
    aws_group_by: tuple[str, ...] = ()  # "TAG:<key>" / "DIMENSION:<name>"; empty: TAG:<tag key>, DIMENSION:SERVICE
    aws_metrics: tuple[str, ...] = DEFAULT_AWS_METRICS
    aws_max_requests: int = 500
    aws_max_attempts: int = 10
    gcp_billing_table: str | None = None
    gcp_export_kind: str = "auto"  # standard | detailed | auto (from the table name)
    gcp_query_project: str | None = None
    gcp_query_location: str | None = None
    gcp_max_bytes_billed: int | None = None
    gcp_list_prices: bool = True
    bigquery_api_endpoint: str | None = None
    cloud_billing_api_endpoint: str | None = None
    gcp_retry_deadline_seconds: float = 600.0  # google-cloud-bigquery's own default deadline
    gcp_timeout_seconds: float = 600.0  # one HTTP request to BigQuery or Cloud Billing; a query job's run
    azure_scopes: tuple[str, ...] = ()
    azure_base_url: str = "https://management.azure.com"
    azure_ca_bundle: str | None = None
    azure_credential_scope: str = "https://management.azure.com/.default"
    azure_tag_key: str = "Project"
    azure_max_retries: int = 6
    azure_max_wait_seconds: float = 300.0
    azure_timeout_seconds: float = 300.0  # one HTTP request (azure-core's default read timeout)
    focus_paths: tuple[str, ...] = ()
    focus_cache_dir: Path = Path("warehouse/focus_cache")
    mlflow_tracking_uri: str | None = None


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    sources: tuple[str, ...]
    rules_path: Path | None
    reporting_currency: str
    restatement_days: int
    sample_dir: Path
    partitions_start: str
    connectors: ConnectorSettings = field(default_factory=ConnectorSettings)
    budgets_path: Path | None = None  # None: rules/budgets.yaml (docs/budgets.md)
    budget_alert_on: tuple[str, ...] = ("actual", "forecast")
    budget_webhook_url: str | None = None  # holds a secret token: never log it (budgets/webhook.py redacts it)
    # MLflow metrics the marts carry (docs/kpis.md): each gets a per-dollar KPI; the quality metric (higher is
    # better) also gives cost per quality point and the cost-vs-quality quadrant.
    kpi_metrics: tuple[str, ...] = DEFAULT_KPI_METRICS
    kpi_quality_metric: str = DEFAULT_KPI_QUALITY_METRIC
    lake: Path | None = None  # MLCOST_LAKE_DIR; None: <warehouse folder>/lake

    @property
    def lake_dir(self) -> Path:
        """Where export files are landed, content-addressed (warehouse/lake.py; docs/architecture.md)."""
        return self.lake or self.warehouse_dir / "lake"

    @property
    def sql_params(self) -> dict[str, object]:
        """Configuration the dbt_like_sql models may read, bound as DuckDB parameters (sql_models.CONFIG_PARAMS)."""
        return kpi_sql_params(self.kpi_metrics, self.kpi_quality_metric)

    @property
    def first_partition(self) -> date:
        return date.fromisoformat(self.partitions_start)

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse_path.parent

    @property
    def sample_mlflow_uri(self) -> str:
        return f"sqlite:///{(self.warehouse_dir / 'mlflow.db').resolve()}"

    def uses_sample(self, source: str) -> bool:
        return SAMPLE in self.sources

    def enabled(self, source: str) -> bool:
        return SAMPLE in self.sources or source in self.sources


def parse_sources(raw: str) -> tuple[str, ...]:
    names = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    unknown = [n for n in names if n not in ALL_SOURCES + (SAMPLE,)]
    if unknown:
        raise ValueError(
            f"MLCOST_SOURCES: unknown source(s) {unknown}; expected 'sample' or a comma list of {list(ALL_SOURCES)}"
        )
    return names or (SAMPLE,)


def kpi_sql_params(
    metrics: tuple[str, ...] = DEFAULT_KPI_METRICS, quality_metric: str = DEFAULT_KPI_QUALITY_METRIC
) -> dict[str, object]:
    # The quality metric is always carried, even when MLCOST_KPI_METRICS leaves it out.
    names = list(dict.fromkeys([*metrics, quality_metric]))
    return {"kpi_metrics": names, "quality_metric": quality_metric}


def _metric_names(env: dict[str, str]) -> tuple[tuple[str, ...], str]:
    raw = env.get("MLCOST_KPI_METRICS")
    metrics = DEFAULT_KPI_METRICS if raw is None else _csv(raw)
    quality = (env.get("MLCOST_KPI_QUALITY_METRIC") or "").strip() or DEFAULT_KPI_QUALITY_METRIC
    for name, value in [*(("MLCOST_KPI_METRICS", m) for m in metrics), ("MLCOST_KPI_QUALITY_METRIC", quality)]:
        # MLflow's own rule for metric names; anything else cannot have been logged.
        if len(value) > 250 or not all(c.isalnum() or c in "_-./ :" for c in value):
            raise ValueError(f"{name}: not an MLflow metric name: {value!r}")
    return metrics, quality


def _partitions_start(raw: str | None) -> str:
    value = (raw or "").strip() or DEFAULT_PARTITIONS_START
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"MLCOST_PARTITIONS_START: not a YYYY-MM-DD date: {raw!r}") from None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    if env is None:
        warn_unknown_settings()  # the environment a process runs with: a typo there is reported once
    env = dict(os.environ if env is None else env)
    warehouse = Path(env.get("MLCOST_WAREHOUSE_PATH", "warehouse/mlcost.duckdb"))
    rules = env.get("MLCOST_RULES")
    kpi_metrics, kpi_quality_metric = _metric_names(env)
    return Settings(
        warehouse_path=warehouse,
        sources=parse_sources(env.get("MLCOST_SOURCES", SAMPLE)),
        rules_path=Path(rules) if rules else None,
        reporting_currency=env.get("MLCOST_REPORTING_CURRENCY", "USD").upper(),
        restatement_days=int(env.get("MLCOST_RESTATEMENT_DAYS", "3")),
        sample_dir=Path(env.get("MLCOST_SAMPLE_DIR", str(warehouse.parent / "samples"))),
        lake=Path(env["MLCOST_LAKE_DIR"]) if (env.get("MLCOST_LAKE_DIR") or "").strip() else None,
        partitions_start=_partitions_start(env.get("MLCOST_PARTITIONS_START")),
        connectors=load_connector_settings(env, warehouse.parent),
        kpi_metrics=kpi_metrics,
        kpi_quality_metric=kpi_quality_metric,
        budgets_path=Path(env["MLCOST_BUDGETS"]) if (env.get("MLCOST_BUDGETS") or "").strip() else None,
        budget_alert_on=parse_budget_alert_on(env.get("MLCOST_BUDGET_ALERT_ON")),
        budget_webhook_url=(env.get("MLCOST_BUDGET_WEBHOOK_URL") or "").strip() or None,
    )


def parse_budget_alert_on(raw: str | None) -> tuple[str, ...]:
    """MLCOST_BUDGET_ALERT_ON: which amount is compared with the thresholds: actual, forecast or both (default)."""
    value = (raw or "").strip().lower() or "both"
    if value == "both":
        return ("actual", "forecast")
    if value in ("actual", "forecast"):
        return (value,)
    raise ValueError(f"MLCOST_BUDGET_ALERT_ON: expected actual, forecast or both, got {raw!r}")


def _positive_int(env: dict[str, str], name: str, default: int | None) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: not an integer: {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name}: must be positive, got {value}")
    return value


def _positive_float(env: dict[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: not a number: {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: must be a positive number of seconds, got {raw!r}")
    return value


def load_connector_settings(env: dict[str, str], warehouse_dir: Path) -> ConnectorSettings:
    def opt(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    kind = (opt("MLCOST_GCP_EXPORT_KIND") or "auto").lower()
    if kind not in ("auto", "standard", "detailed"):
        raise ValueError(f"MLCOST_GCP_EXPORT_KIND: expected standard, detailed or auto, got {kind!r}")
    return ConnectorSettings(
        aws_endpoint_url=opt("MLCOST_AWS_ENDPOINT_URL"),
        aws_region=opt("MLCOST_AWS_REGION") or "us-east-1",
        aws_accounts=_csv(env.get("MLCOST_AWS_ACCOUNTS")),
        aws_payer_account=opt("MLCOST_AWS_PAYER_ACCOUNT"),
        aws_tag_key=opt("MLCOST_AWS_TAG_KEY") or "Project",
        aws_group_by=_csv(env.get("MLCOST_AWS_GROUP_BY")),
        aws_metrics=_csv(env.get("MLCOST_AWS_METRICS")) or DEFAULT_AWS_METRICS,
        aws_max_requests=_positive_int(env, "MLCOST_AWS_MAX_REQUESTS", 500),
        aws_max_attempts=_positive_int(env, "MLCOST_AWS_MAX_ATTEMPTS", 10),
        gcp_billing_table=opt("MLCOST_GCP_BILLING_TABLE"),
        gcp_export_kind=kind,
        gcp_query_project=opt("MLCOST_GCP_QUERY_PROJECT"),
        gcp_query_location=opt("MLCOST_GCP_QUERY_LOCATION"),
        gcp_max_bytes_billed=_positive_int(env, "MLCOST_GCP_MAX_BYTES_BILLED", None),
        gcp_list_prices=_flag(env.get("MLCOST_GCP_LIST_PRICES"), True),
        bigquery_api_endpoint=opt("MLCOST_BIGQUERY_API_ENDPOINT"),
        cloud_billing_api_endpoint=opt("MLCOST_CLOUD_BILLING_API_ENDPOINT"),
        gcp_retry_deadline_seconds=_positive_float(env, "MLCOST_GCP_RETRY_DEADLINE_SECONDS", 600.0),
        gcp_timeout_seconds=_positive_float(env, "MLCOST_GCP_TIMEOUT_SECONDS", 600.0),
        azure_scopes=_csv(env.get("MLCOST_AZURE_SCOPES")),
        azure_base_url=opt("MLCOST_AZURE_BASE_URL") or "https://management.azure.com",
        azure_ca_bundle=opt("MLCOST_AZURE_CA_BUNDLE"),
        azure_credential_scope=opt("MLCOST_AZURE_CREDENTIAL_SCOPE") or "https://management.azure.com/.default",
        azure_tag_key=opt("MLCOST_AZURE_TAG_KEY") or "Project",
        azure_max_retries=_positive_int(env, "MLCOST_AZURE_MAX_RETRIES", 6),
        azure_max_wait_seconds=float(opt("MLCOST_AZURE_MAX_WAIT_SECONDS") or 300),
        azure_timeout_seconds=_positive_float(env, "MLCOST_AZURE_TIMEOUT_SECONDS", 300.0),
        focus_paths=_csv(env.get("MLCOST_FOCUS_PATH")),
        focus_cache_dir=Path(opt("MLCOST_FOCUS_CACHE_DIR") or warehouse_dir / "focus_cache"),
        mlflow_tracking_uri=opt("MLFLOW_TRACKING_URI"),
    )
