"""Resource bindings from settings: which sources are sample, live or off, and where the warehouse is."""

from __future__ import annotations

import os

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


def build_resources(settings: Settings) -> dict[str, object]:
    mlflow_mode = _mode(settings, "mlflow")
    tracking_uri = (
        settings.sample_mlflow_uri if mlflow_mode == "sample" else os.environ.get("MLFLOW_TRACKING_URI", "")
    )
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
        "aws_billing": AwsCostExplorerResource(
            mode=_mode(settings, "aws"),
            payer_account=org.AWS_PAYER_ACCOUNT if _mode(settings, "aws") == "sample"
            else os.environ.get("MLCOST_AWS_PAYER_ACCOUNT"),
        ),
        "gcp_billing": GcpBillingExportResource(mode=_mode(settings, "gcp")),
        "azure_cost": AzureCostManagementResource(mode=_mode(settings, "azure")),
        "focus_export": FocusExportResource(mode=_mode(settings, "focus"), path=str(settings.sample_dir)),
        "mlflow": MlflowTrackingResource(mode=mlflow_mode, tracking_uri=tracking_uri),
    }
