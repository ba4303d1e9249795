"""Cloud Billing API lookups that enrich billing export rows: the account's display name and SKU list prices.

Source: google-cloud-billing `CloudBillingClient.get_billing_account` and `CloudCatalogClient.list_skus` (REST
transport, so an endpoint override can be any https or http URL). Grain: one billing account; one SKU price
per (service, SKU) in the export's currency, read once per pull and service.

List prices fill `cost_at_list` only where the export leaves it empty (older exports, some SKUs): ListCost =
amount_in_pricing_units x the SKU's current list unit price, using its first non-free tier, when the export's
pricing unit is the catalog's usage unit. Such rows are marked `cost_at_list_source: "cloud_billing_catalog"`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

CATALOG_MARK = "cloud_billing_catalog"


class CloudBillingUnavailableError(RuntimeError):
    """Cloud Billing kept failing past MLCOST_GCP_RETRY_DEADLINE_SECONDS, or answered a pagination loop."""


def billing_retry(deadline_seconds: float):
    """Retry what is transient (429, 5xx, dropped connections, timeouts) within the deadline.

    The generated clients retry get_billing_account only on 503 and list_skus not at all. What is not retried
    (403 API disabled, 404) is a refusal the caller logs and carries on without.
    """
    import requests
    from google.api_core import exceptions as gexc
    from google.api_core import retry

    transient = (gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway, gexc.ServiceUnavailable,
                 gexc.GatewayTimeout, requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                 requests.exceptions.ChunkedEncodingError)  # fmt: skip
    return retry.Retry(predicate=retry.if_exception_type(*transient), initial=1.0, maximum=30.0, multiplier=2.0,
                       timeout=deadline_seconds)  # fmt: skip


def _gave_up(what: str, exc: Exception, deadline_seconds: float | None) -> CloudBillingUnavailableError:
    return CloudBillingUnavailableError(
        f"Cloud Billing {what}: still failing after retries (MLCOST_GCP_RETRY_DEADLINE_SECONDS="
        f"{deadline_seconds:g}): {type(exc).__name__}: {exc}"
    )


def make_billing_clients(api_endpoint: str | None = None, credentials: Any = None) -> tuple[Any, Any]:
    """(CloudBillingClient, CloudCatalogClient) over REST; credentials from Google's ADC unless given."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import billing_v1

    options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
    return (
        billing_v1.CloudBillingClient(transport="rest", client_options=options, credentials=credentials),
        billing_v1.CloudCatalogClient(transport="rest", client_options=options, credentials=credentials),
    )


def _retrying(deadline_seconds: float | None, timeout_seconds: float | None) -> dict:
    out: dict = {}
    if deadline_seconds is not None:
        out["retry"] = billing_retry(deadline_seconds)
    if timeout_seconds is not None:
        out["timeout"] = timeout_seconds
    return out


def billing_account_name(billing_client: Any, account_id: str, *, retry_deadline_seconds: float | None = None,
                         timeout_seconds: float | None = None) -> str | None:  # fmt: skip
    import requests
    from google.api_core.exceptions import RetryError

    try:
        account = billing_client.get_billing_account(name=f"billingAccounts/{account_id}",
                                                     **_retrying(retry_deadline_seconds, timeout_seconds))  # fmt: skip
    except (RetryError, requests.exceptions.RequestException) as exc:
        raise _gave_up(f"get_billing_account {account_id}", exc, retry_deadline_seconds) from exc
    return account.display_name or None


def _money(m: Any) -> Decimal:
    return Decimal(int(m.units or 0)) + Decimal(int(m.nanos or 0)).scaleb(-9)


def _skus(catalog_client: Any, request: Any, retry_deadline_seconds: float | None, timeout_seconds: float | None):
    """Every SKU of every page; a nextPageToken served twice is a loop the pager would follow forever."""
    import requests
    from google.api_core.exceptions import RetryError

    what = f"list_skus {request.parent} {request.currency_code}"
    try:
        pager = catalog_client.list_skus(request=request, **_retrying(retry_deadline_seconds, timeout_seconds))
        tokens: set[str] = set()
        for page in pager.pages:
            yield from page.skus
            if page.next_page_token in tokens:
                raise CloudBillingUnavailableError(
                    f"Cloud Billing {what}: nextPageToken {page.next_page_token!r} repeated (pagination loop)")
            tokens.add(page.next_page_token)
    except (RetryError, requests.exceptions.RequestException) as exc:
        raise _gave_up(what, exc, retry_deadline_seconds) from exc


def sku_list_prices(catalog_client: Any, service_id: str, currency: str, *, retry_deadline_seconds: float | None = None,
                    timeout_seconds: float | None = None) -> dict[str, tuple[Decimal, set[str]]]:  # fmt: skip
    """sku id -> (list unit price, names of its usage unit) for one service, in `currency`."""
    from google.cloud import billing_v1

    request = billing_v1.ListSkusRequest(parent=f"services/{service_id}", currency_code=currency)
    prices = {}
    for sku in _skus(catalog_client, request, retry_deadline_seconds, timeout_seconds):
        if not sku.pricing_info:
            continue
        expression = sku.pricing_info[-1].pricing_expression  # the latest effective price
        rates = sorted(expression.tiered_rates, key=lambda r: r.start_usage_amount)
        paid = [r for r in rates if _money(r.unit_price) > 0]
        if not paid:
            continue
        units = {u for u in (expression.usage_unit, expression.usage_unit_description) if u}
        prices[sku.sku_id] = (_money(paid[0].unit_price), units)
    return prices


def fill_list_costs(
    payloads: list[dict], catalog_client: Any, log: Callable[[str], None] | None = None, *,
    retry_deadline_seconds: float | None = None, timeout_seconds: float | None = None,
) -> int:
    """Set cost_at_list from catalog list prices where the export has none; returns how many rows were filled."""
    wanted = [p for p in payloads if p.get("cost_at_list") is None and p.get("cost_type") == "regular"
              and (p.get("usage") or {}).get("amount_in_pricing_units") is not None]  # fmt: skip
    cache: dict[tuple[str, str], dict[str, tuple[Decimal, set[str]]]] = {}
    filled = 0
    for p in wanted:
        service_id, sku_id = (p.get("service") or {}).get("id"), (p.get("sku") or {}).get("id")
        if not service_id or not sku_id or not isinstance(p.get("currency"), str):
            continue
        key = (service_id, p["currency"])
        if key not in cache:
            cache[key] = sku_list_prices(catalog_client, service_id, p["currency"],
                                         retry_deadline_seconds=retry_deadline_seconds,
                                         timeout_seconds=timeout_seconds)  # fmt: skip
        price = cache[key].get(sku_id)
        if price is None or p["usage"].get("pricing_unit") not in price[1]:
            continue
        quantity = Decimal(str(p["usage"]["amount_in_pricing_units"]))
        p["cost_at_list"] = format(quantity * price[0], "f")
        p["cost_at_list_source"] = CATALOG_MARK
        filled += 1
    if log and wanted:
        log(f"GCP billing: list price from the Cloud Billing catalog for {filled} of {len(wanted)} row(s) without cost_at_list")
    return filled
