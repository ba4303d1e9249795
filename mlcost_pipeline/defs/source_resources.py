"""One resource per external system. `mode` is `sample` (the embedded default), `live`, or `off`.

Sample mode runs the same extraction loop against generators that answer in the provider's native shape, so the
demo exercises the production normalize/allocate/mart code. Live mode wraps the real client library; credentials
come only from each SDK's own chain (AWS profile/role, Google ADC, DefaultAzureCredential), never from here.
No client is created before `pull` is called. Every pull is checked (landing_checks) before it is returned, so a
bad answer fails the partition and the raw table keeps its previous data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from mlcost_pipeline.defs.partitions import days_in
from mlcost_pipeline.sources.landing_checks import SourceDataError, check_records, window_label
from mlcost_pipeline.sources.sample import org

Records = list[tuple[date, dict]]


def _info(log, message: str) -> None:
    if log:
        log.info(message)


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

    accounts: list[str] = list(org.AWS_ACCOUNTS)  # empty: one series for the whole organization
    tag_key: str = "Project"
    group_by: list[str] = []  # "TYPE:Key"; empty: TAG:<tag_key>, DIMENSION:SERVICE
    metrics: list[str] = ["UnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity"]
    endpoint_url: str | None = None
    region: str = "us-east-1"
    max_requests: int = 500
    max_attempts: int = 10
    payer_account: str | None = None  # Cost Explorer answers do not name the payer; it is recorded with each page

    def _client(self):
        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient

            return SampleCostExplorerClient()
        import boto3
        from botocore.config import Config

        # Adaptive mode rate-limits the client itself after throttling (LimitExceededException), then retries.
        return boto3.client(
            "ce",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "adaptive", "max_attempts": self.max_attempts}),
        )

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
        from mlcost_pipeline.sources.aws_cost_explorer import SOURCE, fetch_cost_and_usage, parse_group_by

        pulled = fetch_cost_and_usage(
            self._client(), start, end, accounts=self.accounts, group_by=parse_group_by(self.group_by, self.tag_key),
            metrics=self.metrics, max_requests=self.max_requests,
        )
        _info(log, f"Cost Explorer: {pulled.requests} GetCostAndUsage request(s) for [{start}, {end}) "
                   f"(~${pulled.requests * 0.01:.2f}; cap MLCOST_AWS_MAX_REQUESTS={self.max_requests})")
        if pulled.estimated_days:
            _info(log, f"Cost Explorer: {len(pulled.estimated_days)} day(s) still Estimated, re-pulled by the "
                       f"restatement window: {', '.join(map(str, pulled.estimated_days))}")
        if self.payer_account:
            for _, payload in pulled.records:
                payload["billing_account_id"] = self.payer_account
        check_records(SOURCE, pulled.records, start, end, normalize_cost_explorer)
        return pulled.records


class GcpBillingExportResource(SourceResource):
    """The BigQuery billing export (standard, detailed or Google's FOCUS export), aggregated per day in BigQuery."""

    table: str | None = None  # exactly one project.dataset.gcp_billing_export_{v1,resource_v1,focus}_<ACCOUNT>
    export_kind: str = "auto"
    query_project: str | None = None
    query_location: str | None = None
    max_bytes_billed: int | None = None
    list_prices: bool = True
    bigquery_api_endpoint: str | None = None
    cloud_billing_api_endpoint: str | None = None
    retry_deadline_seconds: float = 600.0  # per BigQuery / Cloud Billing call, retries included
    timeout_seconds: float = 600.0  # per HTTP request, and for the query job to finish

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
        from mlcost_pipeline.sources.gcp_billing_export import SOURCE

        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows

            records = [(day, row) for day in days_in(start, end) for row in export_rows(day)]
        else:
            records = self._pull_live(start, end, log)
        check_records(SOURCE, records, start, end, normalize_billing_export)
        return records

    def _pull_live(self, start: date, end: date, log) -> Records:
        from google.api_core.client_options import ClientOptions
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        from mlcost_pipeline.sources import gcp_cloud_billing as billing
        from mlcost_pipeline.sources.gcp_billing_export import (
            bigquery_retry,
            describe_table,
            fetch_billing_export,
            parse_table,
        )
        from mlcost_pipeline.sources.gcp_billing_schema import FOCUS, the_table

        where = f"gcp_billing_export {window_label(start, end)}"
        try:
            name = the_table(self.table)  # before any call: two tables (standard and detailed) are refused
            project = parse_table(name)[0]
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        options = ClientOptions(api_endpoint=self.bigquery_api_endpoint) if self.bigquery_api_endpoint else None
        client = bigquery.Client(project=self.query_project or project, client_options=options)
        try:
            table = describe_table(client, name, self.export_kind, retry=bigquery_retry(self.retry_deadline_seconds),
                                   timeout=self.timeout_seconds)  # fmt: skip
        except ValueError as exc:
            raise SourceDataError(f"{where}: {exc}") from exc
        except GoogleAPIError as exc:  # 404, 403, or still failing after the retries
            raise RuntimeError(f"{where}: BigQuery tables.get {name}: {type(exc).__name__}: {exc}") from exc
        pulled = fetch_billing_export(client, table, start, end, max_bytes_billed=self.max_bytes_billed,
                                      location=self.query_location, retry_deadline_seconds=self.retry_deadline_seconds,
                                      timeout_seconds=self.timeout_seconds)  # fmt: skip
        _info(log, f"GCP billing export ({table.kind}): {len(pulled.records)} aggregated row(s) from "
                   f"{pulled.export_rows} export row(s) for [{start}, {end}); {pulled.bytes_processed:,} bytes processed")
        payloads = [p for _, p in pulled.records]
        if payloads:
            try:
                self._enrich(payloads, log, focus=table.dataset == FOCUS)
            except billing.CloudBillingUnavailableError as exc:
                raise RuntimeError(f"{where}: {exc}") from exc
        return pulled.records

    def _enrich(self, payloads: list[dict], log, focus: bool = False) -> None:
        """Account names and catalog list prices: nice to have, so a refusal (403, API off) is logged, not fatal.

        An outage (still failing after the retries) fails the pull instead: landing without list prices today and
        with them on the rerun would change the day's ListCost silently. FOCUS records carry ListCost already and
        get only the account name, where the export leaves BillingAccountName empty.
        """
        from google.api_core.exceptions import GoogleAPICallError

        from mlcost_pipeline.sources import gcp_cloud_billing as billing

        account_key, name_key = ("BillingAccountId", "BillingAccountName") if focus else ("billing_account_id",
                                                                                          "billing_account_name")
        bounds = {"retry_deadline_seconds": self.retry_deadline_seconds, "timeout_seconds": self.timeout_seconds}
        billing_client, catalog_client = billing.make_billing_clients(self.cloud_billing_api_endpoint)
        names: dict[str, str | None] = {}
        wanted = {str(p[account_key]) for p in payloads if p.get(account_key) and not (focus and p.get(name_key))}
        for account in sorted(wanted):
            try:
                names[account] = billing.billing_account_name(billing_client, account, **bounds)
            except GoogleAPICallError as exc:
                if log:
                    log.warning(f"Cloud Billing: no name for billing account {account}: {type(exc).__name__}")
        for p in payloads:
            if not (focus and p.get(name_key)):
                p[name_key] = names.get(str(p.get(account_key)))
        if self.list_prices and not focus:
            try:
                billing.fill_list_costs(payloads, catalog_client, log=log.info if log else None, **bounds)
            except GoogleAPICallError as exc:
                if log:
                    log.warning(f"Cloud Billing Catalog: list prices not filled: {type(exc).__name__}")


class AzureCostManagementResource(SourceResource):
    """Azure Cost Management Query API, ActualCost and AmortizedCost, for each configured scope."""

    scopes: list[str] = [f"/subscriptions/{s}" for s in org.AZURE_SUBSCRIPTIONS]
    tag_key: str = "Project"
    base_url: str = "https://management.azure.com"
    ca_bundle: str | None = None
    credential_scope: str = "https://management.azure.com/.default"
    max_retries: int = 6
    max_wait_seconds: float = 300.0
    timeout_seconds: float = 300.0  # per HTTP request; a stalled answer is dropped and retried

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.normalize.azure_cost_management import normalize_cost_query
        from mlcost_pipeline.sources.azure_cost_management import SOURCE, fetch_cost_query, grouping_for

        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.azure_cost_management import SampleCostQuery

            query = SampleCostQuery()
        else:
            from mlcost_pipeline.sources.azure_query_client import AzureCostQuery, make_cost_management_client

            if not self.scopes:
                raise ValueError("azure_cost_management: live mode needs MLCOST_AZURE_SCOPES (e.g. /subscriptions/<id>)")
            client = make_cost_management_client(self.base_url, self.ca_bundle, credential_scope=self.credential_scope,
                                                 timeout_seconds=self.timeout_seconds)  # fmt: skip
            query = AzureCostQuery(client, max_retries=self.max_retries, max_wait_seconds=self.max_wait_seconds,
                                   log=log.info if log else None)  # fmt: skip
        grouping = grouping_for(self.tag_key)
        records = [rec for scope in self.scopes for rec in fetch_cost_query(query, scope, start, end, grouping=grouping)]
        if self.mode != "sample":
            _info(log, f"Azure Cost Management: {query.requests} query request(s), {query.retries} retried, "
                       f"for {len(self.scopes)} scope(s) and [{start}, {end})")
        check_records(SOURCE, records, start, end, normalize_cost_query)
        return records


class FocusExportResource(SourceResource):
    """Export files from folders, globs or URLs: FOCUS, AWS CUR and Azure cost details, read as their provider
    lays them out (sources/export_discovery); the sample writes OCI FOCUS files."""

    path: str = "warehouse/samples"  # sample mode: where the sample files are written
    paths: list[str] = []  # live mode: MLCOST_FOCUS_PATH entries
    cache_dir: str = "warehouse/focus_cache"
    lake_dir: str = "warehouse/lake"  # where the files that count are landed, content-addressed
    rules_path: str | None = None  # the rules' cost basis is checked as strictly as BilledCost

    def strict_columns(self) -> frozenset[str]:
        from mlcost_pipeline.allocation.rules import RulesError, load_rules
        from mlcost_pipeline.normalize.focus_export_sql import strict_columns

        try:
            return strict_columns(load_rules(self.rules_path).rules.cost_basis)
        except RulesError:  # the allocation step reports a broken rules file; landing keeps the default basis
            return strict_columns()

    def files(self, start: date, end: date, log=None):
        """Which export file holds each day's charges, every chosen file checked (sources/export_reads.py)."""
        from mlcost_pipeline.sources.export_reads import ChosenFile, files_by_day

        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.focus_export import write_focus_export

            days = days_in(start, end)
            chosen = [ChosenFile(path, uri=str(path), days=(day,))
                      for day, path in zip(days, write_focus_export(days, Path(self.path)), strict=True)]
            discovery = None
        else:
            from mlcost_pipeline.sources.export_stores import resolve_exports

            found, discovery = resolve_exports(self.paths, Path(self.cache_dir))
            chosen = [ChosenFile.of(f, path) for f, path in found]
            _info(log, f"export files: {len(chosen)} file(s) count under {', '.join(self.paths)}")
            for line in discovery.lines():
                if log:
                    log.info(line)
        landing = files_by_day(chosen, start, end, log=log.info if log else None, strict=self.strict_columns(),
                               lake_dir=Path(self.lake_dir))
        if discovery is not None:
            landing.warnings[:0] = discovery.warnings()
            landing.discovery = discovery.metadata()
        return landing


class MlflowTrackingResource(SourceResource):
    """An MLflow tracking server or store; the sample is a real sqlite store under the warehouse folder."""

    tracking_uri: str

    def _client(self):
        from mlflow.tracking import MlflowClient

        if self.mode != "sample" and not self.tracking_uri:
            raise ValueError("mlflow: live mode needs MLFLOW_TRACKING_URI")
        return MlflowClient(tracking_uri=self.tracking_uri)

    def pull(self, start: date, end: date, log=None) -> Records:
        from mlcost_pipeline.normalize.mlflow_records import normalize_runs
        from mlcost_pipeline.sources.mlflow_tracking import SOURCE, fetch_runs, runs_ended_in_window

        if self.mode == "sample":
            from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs

            created = ensure_sample_runs(self.tracking_uri, days_in(start, end))
            if created:
                _info(log, f"sample MLflow store: created {created} run(s)")
        client = self._client()
        records = fetch_runs(client, start, end)
        earlier = runs_ended_in_window(client, start, end)
        if earlier:
            _info(log, f"MLflow: {len(earlier)} run(s) ended in [{start}, {end}) but started earlier, on "
                       f"{', '.join(sorted({str(d) for d in earlier}))}: re-materialize those days to refresh them")
        check_records(SOURCE, records, start, end, normalize_runs)
        return records

    def pull_model_versions(self) -> list[dict]:
        from mlcost_pipeline.sources.mlflow_tracking import fetch_model_versions

        return fetch_model_versions(self._client())
