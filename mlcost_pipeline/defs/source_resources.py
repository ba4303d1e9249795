"""One resource per external system. `mode` is `sample` (the embedded default), `live`, or `off`.

Sample mode runs the same extraction loop against generators that answer in the provider's native shape, so the
demo exercises the production normalize/allocate/mart code. No client is created before `pull` is called.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from mlcost_pipeline.defs.partitions import days_in
from mlcost_pipeline.sources.sample import org

Records = list[tuple[date, dict]]


class SourceResource(dg.ConfigurableResource):
    mode: str = "sample"

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def label(self) -> str:
        return self.mode


class AwsCostExplorerResource(SourceResource):
    """AWS Cost Explorer GetCostAndUsage, one query series per linked account (see sources/aws_cost_explorer)."""

    accounts: list[str] = list(org.AWS_ACCOUNTS)
    tag_key: str = "Project"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    max_requests: int = 500
    payer_account: str | None = None  # Cost Explorer answers do not name the payer; it is recorded with each page

    def _client(self):
        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient

            return SampleCostExplorerClient()
        import boto3
        from botocore.config import Config

        return boto3.client(
            "ce",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "adaptive", "max_attempts": 10}),
        )

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.sources.aws_cost_explorer import fetch_cost_and_usage

        pulled = fetch_cost_and_usage(
            self._client(), start, end, accounts=self.accounts, tag_key=self.tag_key, max_requests=self.max_requests
        )
        if log:
            log.info(f"Cost Explorer: {pulled.requests} request(s) for [{start}, {end})")
        if self.payer_account:
            for _, payload in pulled.records:
                payload["billing_account_id"] = self.payer_account
        return pulled.records


class GcpBillingExportResource(SourceResource):
    """The BigQuery billing export (standard usage cost table)."""

    def pull(self, start: date, end: date, log=None) -> Records:
        if self.mode != "sample":
            raise NotImplementedError("live GCP billing export extraction is not implemented yet")
        from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows

        return [(day, row) for day in days_in(start, end) for row in export_rows(day)]


class AzureCostManagementResource(SourceResource):
    """Azure Cost Management Query API, ActualCost and AmortizedCost, for each configured scope."""

    scopes: list[str] = [f"/subscriptions/{s}" for s in org.AZURE_SUBSCRIPTIONS]

    def pull(self, start: date, end: date, log=None) -> Records:
        if self.mode != "sample":
            raise NotImplementedError("live Azure Cost Management extraction is not implemented yet")
        from mlcost_pipeline.sources.azure_cost_management import fetch_cost_query
        from mlcost_pipeline.sources.sample.azure_cost_management import SampleCostQuery

        query = SampleCostQuery()
        return [rec for scope in self.scopes for rec in fetch_cost_query(query, scope, start, end)]


class FocusExportResource(SourceResource):
    """FOCUS export files (CSV, gzip CSV, Parquet) from a folder or glob; the sample writes OCI files."""

    path: str = "warehouse/samples"

    def files(self, start: date, end: date) -> list[tuple[date, Path]]:
        """(day, file) pairs: which export file holds each day's charges."""
        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.focus_export import write_focus_export

            days = days_in(start, end)
            return list(zip(days, write_focus_export(days, Path(self.path)), strict=True))
        raise NotImplementedError("live FOCUS export discovery is not implemented yet")


class MlflowTrackingResource(SourceResource):
    """An MLflow tracking server or store; the sample is a real sqlite store under the warehouse folder."""

    tracking_uri: str

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.sources.mlflow_tracking import fetch_runs

        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs

            created = ensure_sample_runs(self.tracking_uri, days_in(start, end))
            if log and created:
                log.info(f"sample MLflow store: created {created} run(s)")
        return fetch_runs(self._client(), start, end)

    def pull_model_versions(self) -> list[dict]:
        from mlcost_pipeline.sources.mlflow_tracking import fetch_model_versions

        return fetch_model_versions(self._client())
