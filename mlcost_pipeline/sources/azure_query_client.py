"""The live Azure Cost Management Query API behind `sources.azure_cost_management.CostQuery`.

Source: azure-mgmt-costmanagement `CostManagementClient.query.usage` (POST {scope}/providers/
Microsoft.CostManagement/query), credentials from DefaultAzureCredential (or any TokenCredential a caller
passes). Grain: one QueryResult page body as Azure sent it (JSON), so live and sample land the same shape.

Why our own paging and retry: `query.usage` is not a pager (the SDK never follows `properties.nextLink`), and
azure-core does not retry this POST on HTTP 429 unless `Retry-After` is present, while Cost Management throttles
with `x-ms-ratelimit-microsoft.costmanagement-{qpu,entity,tenant}-retry-after`. So the SDK's retries are off
and this module waits for the longest retry-after it is given, and backs off on 5xx and dropped connections.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_BASE_URL = "https://management.azure.com"
DEFAULT_CREDENTIAL_SCOPE = "https://management.azure.com/.default"
EMPTY_PAGE: dict = {"properties": {"nextLink": None, "columns": [], "rows": []}}


class AzureThrottledError(RuntimeError):
    """Cost Management kept throttling (or failing) past the retry budget."""


def make_cost_management_client(
    base_url: str = DEFAULT_BASE_URL,
    ca_bundle: str | None = None,
    credential: Any = None,
    credential_scope: str = DEFAULT_CREDENTIAL_SCOPE,
    timeout_seconds: float = 300.0,
):
    """A CostManagementClient with the SDK's own retries off (this module retries); nothing connects yet.

    `timeout_seconds` bounds connecting and each wait for the answer (azure-core's default is 300 s for both):
    a stalled query raises ServiceResponseError, which AzureCostQuery retries within its budget.
    """
    from azure.mgmt.costmanagement import CostManagementClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs: dict[str, Any] = {"base_url": base_url.rstrip("/"), "retry_total": 0,
                              "credential_scopes": [credential_scope], "connection_timeout": timeout_seconds,
                              "read_timeout": timeout_seconds}  # fmt: skip
    if ca_bundle:
        kwargs["connection_verify"] = ca_bundle
    return CostManagementClient(credential, **kwargs)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest wait any throttling header asks for (x-ms-ratelimit-*-retry-after, Retry-After), or None."""
    waits = []
    for name, value in headers.items():
        lower = name.lower()
        if lower == "retry-after" or (lower.startswith("x-ms-ratelimit-") and lower.endswith("-retry-after")):
            try:
                waits.append(float(value))
            except ValueError:
                try:  # Retry-After may be an HTTP date
                    waits.append(max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
                except (TypeError, ValueError):
                    continue
    return max(waits) if waits else None


def _window(parameters: dict) -> str:
    """'days 2026-03-01..2026-03-31 ' from a query body's inclusive timePeriod (for error messages)."""
    period = parameters.get("timePeriod") if isinstance(parameters, dict) else None
    if not isinstance(period, dict):
        return ""
    return f"days {str(period.get('from', ''))[:10]}..{str(period.get('to', ''))[:10]} "


def _raw_body(pipeline_response, deserialized, headers):  # the SDK's `cls` hook: keep Azure's JSON verbatim
    response = pipeline_response.http_response
    return None if response.status_code == 204 else response.json()


class AzureCostQuery:
    """`usage(scope, parameters)` -> first page, `next_page(next_link)` -> later pages, both as JSON dicts."""

    def __init__(
        self,
        client: Any,
        *,
        max_retries: int = 6,
        max_wait_seconds: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.max_retries = max_retries
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep
        self.log = log
        self.requests = 0
        self.retries = 0
        self._last: tuple[str, dict] | None = None

    @property
    def api_version(self) -> str:
        return str(getattr(getattr(self.client, "_config", None), "api_version", "unknown"))

    def usage(self, scope: str, parameters: dict) -> dict:
        self._last = (scope, parameters)
        return self._call(scope, parameters, {})

    def next_page(self, next_link: str) -> dict:
        # Re-POST the same body through the client with nextLink's query ($skiptoken ...): the configured base URL
        # (proxy, sovereign cloud) stays in charge even when nextLink names another host.
        if self._last is None:
            raise RuntimeError("next_page called before usage")
        scope, parameters = self._last
        query = parse_qs(urlsplit(next_link).query)
        params = {k: v[0] for k, v in query.items() if k.lower() != "api-version"}
        return self._call(scope, parameters, params)

    def _call(self, scope: str, parameters: dict, params: dict[str, str]) -> dict:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        attempt = 0
        while True:
            self.requests += 1
            try:
                body = self.client.query.usage(scope, parameters, params=dict(params), cls=_raw_body)
                return EMPTY_PAGE if body is None else body
            except HttpResponseError as exc:
                status = exc.status_code or 0
                if status != 429 and not 500 <= status < 600:
                    raise
                asked = retry_after_seconds(exc.response.headers if exc.response is not None else {})
                reason = f"HTTP {status}"
            except (ServiceRequestError, ServiceResponseError) as exc:
                asked, reason = None, f"{type(exc).__name__}"
            where = f"azure_cost_management {_window(parameters)}{scope}"
            if attempt >= self.max_retries:
                raise AzureThrottledError(
                    f"{where}: still {reason} after {attempt} retries (MLCOST_AZURE_MAX_RETRIES={self.max_retries})"
                )
            wait = asked if asked is not None else min(2.0**attempt, 60.0)
            if wait > self.max_wait_seconds:
                raise AzureThrottledError(
                    f"{where}: {reason}, asked to wait {wait:.0f} s, more than "
                    f"MLCOST_AZURE_MAX_WAIT_SECONDS={self.max_wait_seconds:.0f}"
                )
            if self.log:
                self.log(f"Azure Cost Management: {reason} on {scope}; retry {attempt + 1} in {wait:.1f} s")
            attempt += 1
            self.retries += 1
            self.sleep(wait)
