"""Checks that run on a pull before anything lands: bad data fails the partition and leaves the old data in place.

Source: the `(day, payload)` records a source returns for a window. Each record set is checked per UTC day:
every day inside the window, every currency a known ISO 4217 code, and the day's payloads normalizable by the
same pure normalizer core.focus_costs uses later. An error names the source, the partition (day) and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.sources.currencies import is_known_currency

Records = list[tuple[date, dict]]
Normalizer = Callable[[list[dict], datetime], object]


class SourceDataError(ValueError):
    """A source answered something that must not land: the message names source, partition and field."""


def window_label(start: date, end: date) -> str:
    days = (end - start).days
    return f"partition {start}" if days == 1 else f"partitions {start}..{date.fromordinal(end.toordinal() - 1)}"


_COST_METRICS = ("UnblendedCost", "NetUnblendedCost", "AmortizedCost", "NetAmortizedCost", "BlendedCost")


def _aws_currencies(payload: dict) -> Iterator[tuple[str, object]]:
    for r, result in enumerate((payload.get("response") or {}).get("ResultsByTime") or []):
        for g, group in enumerate(result.get("Groups") or []):
            for name, metric in (group.get("Metrics") or {}).items():
                if name in _COST_METRICS and isinstance(metric, dict):
                    yield f"ResultsByTime[{r}].Groups[{g}].Metrics.{name}.Unit", metric.get("Unit")


def _gcp_currencies(payload: dict) -> Iterator[tuple[str, object]]:
    if payload.get("x_Dataset") == "focus":  # a row of Google's FOCUS export table (FOCUS column names)
        yield "BillingCurrency", payload.get("BillingCurrency")
    else:
        yield "currency", payload.get("currency")


def _azure_currencies(payload: dict) -> Iterator[tuple[str, object]]:
    properties = (payload.get("response") or {}).get("properties") or {}
    names = [str(c.get("name", "")).lower() for c in properties.get("columns") or [] if isinstance(c, dict)]
    if "currency" not in names:
        return
    at = names.index("currency")
    for r, row in enumerate(properties.get("rows") or []):
        if isinstance(row, list) and len(row) > at:
            yield f"properties.rows[{r}].Currency", row[at]


CURRENCY_FIELDS: dict[str, Callable[[dict], Iterator[tuple[str, object]]]] = {
    "aws_cost_explorer": _aws_currencies,
    "gcp_billing_export": _gcp_currencies,
    "azure_cost_management": _azure_currencies,
}


def check_records(source: str, records: Records, start: date, end: date, normalize: Normalizer) -> None:
    """Raise SourceDataError on the first problem; return quietly when every day would normalize cleanly."""
    by_day: dict[date, list[dict]] = {}
    for day, payload in records:
        if not start <= day < end:
            raise SourceDataError(f"{source} {window_label(start, end)}: a record dated {day} is outside the window")
        by_day.setdefault(day, []).append(payload)
    currencies = CURRENCY_FIELDS.get(source)
    now = datetime.now(UTC).replace(tzinfo=None)
    for day in sorted(by_day):
        payloads = by_day[day]
        where = f"{source} partition {day}"
        for n, payload in enumerate(payloads):
            if not isinstance(payload, dict):
                raise SourceDataError(f"{where}: record {n}: malformed record, not an object: {payload!r:.80}")
            for field, code in currencies(payload) if currencies else ():
                if not is_known_currency(code):
                    raise SourceDataError(
                        f"{where}: record {n}: field {field}: unknown currency {code!r} (not an ISO 4217 code)"
                    )
        try:
            normalize(payloads, now)
        except NormalizationError as exc:
            raise SourceDataError(f"{where}: {exc}") from exc
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise SourceDataError(f"{where}: malformed record ({type(exc).__name__}: {exc})") from exc
