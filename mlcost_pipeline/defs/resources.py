"""Resource bindings from settings: which sources are sample, live or off, and where each live one is."""

from __future__ import annotations

import os

import dagster as dg

from mlcost_pipeline.defs.source_resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    FocusExportResource,
    GcpBillingExportResource,
    MlflowTrackingResource,
)
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import SAMPLE, Settings
from mlcost_pipeline.sources.sample import org


def _mode(settings: Settings, source: str) -> str:
    if SAMPLE in settings.sources:
        return "sample"
    return "live" if source in settings.sources else "off"


def _aws(settings: Settings) -> AwsCostExplorerResource:
    mode, c = _mode(settings, "aws"), settings.connectors
    if mode == "sample":
        return AwsCostExplorerResource(mode=mode, payer_account=org.AWS_PAYER_ACCOUNT)
    return AwsCostExplorerResource(
        mode=mode, accounts=list(c.aws_accounts), tag_key=c.aws_tag_key, group_by=list(c.aws_group_by),
        metrics=list(c.aws_metrics), endpoint_url=c.aws_endpoint_url, region=c.aws_region,
        max_requests=c.aws_max_requests, max_attempts=c.aws_max_attempts, payer_account=c.aws_payer_account,
    )  # fmt: skip


def _gcp(settings: Settings) -> GcpBillingExportResource:
    mode, c = _mode(settings, "gcp"), settings.connectors
    if mode == "sample":
        return GcpBillingExportResource(mode=mode)
    return GcpBillingExportResource(
        mode=mode, table=c.gcp_billing_table, export_kind=c.gcp_export_kind, query_project=c.gcp_query_project,
        query_location=c.gcp_query_location, max_bytes_billed=c.gcp_max_bytes_billed, list_prices=c.gcp_list_prices,
        bigquery_api_endpoint=c.bigquery_api_endpoint, cloud_billing_api_endpoint=c.cloud_billing_api_endpoint,
        retry_deadline_seconds=c.gcp_retry_deadline_seconds, timeout_seconds=c.gcp_timeout_seconds,
    )  # fmt: skip


def _azure(settings: Settings) -> AzureCostManagementResource:
    mode, c = _mode(settings, "azure"), settings.connectors
    if mode == "sample":
        return AzureCostManagementResource(mode=mode)
    return AzureCostManagementResource(
        mode=mode, scopes=list(c.azure_scopes), tag_key=c.azure_tag_key, base_url=c.azure_base_url,
        ca_bundle=c.azure_ca_bundle, credential_scope=c.azure_credential_scope, max_retries=c.azure_max_retries,
        max_wait_seconds=c.azure_max_wait_seconds, timeout_seconds=c.azure_timeout_seconds,
    )  # fmt: skip


def _tracking_uri(settings: Settings, mode: str) -> str | dg.EnvVar:
    if mode == "sample":
        return settings.sample_mlflow_uri
    uri = settings.connectors.mlflow_tracking_uri or ""
    # A live URI may hold user:password@: as an EnvVar the UI and run config show the variable's name, and the
    # value is read at run time. (Settings built from a dict, as in tests, keep the plain value.)
    if uri and os.environ.get("MLFLOW_TRACKING_URI") == uri:
        return dg.EnvVar("MLFLOW_TRACKING_URI")
    return uri


def build_resources(settings: Settings) -> dict[str, object]:
    mlflow_mode = _mode(settings, "mlflow")
    c = settings.connectors
    tracking_uri = _tracking_uri(settings, mlflow_mode)
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
        "aws_billing": _aws(settings),
        "gcp_billing": _gcp(settings),
        "azure_cost": _azure(settings),
        "focus_export": FocusExportResource(
            mode=_mode(settings, "focus"), path=str(settings.sample_dir), paths=list(c.focus_paths),
            cache_dir=str(c.focus_cache_dir), lake_dir=str(settings.lake_dir),
            rules_path=str(settings.rules_path) if settings.rules_path else None,
        ),
        "mlflow": MlflowTrackingResource(mode=mlflow_mode, tracking_uri=tracking_uri),
    }
