"""Structured logs (logfmt, secrets redacted) and the raw assets' billed-cost totals from native records."""

import logging
from datetime import date
from decimal import Decimal

from mlcost_pipeline.normalize.native_totals import UNREADABLE, native_totals
from mlcost_pipeline.observability import log_event, logfmt, redact_text
from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient
from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows

DAY = date(2026, 11, 10)


def _parse(line: str) -> dict[str, str]:
    import shlex

    return dict(part.split("=", 1) for part in shlex.split(line))


def test_logfmt_line_parses_back_into_its_fields():
    line = logfmt("raw_landed", {"table": "raw.aws_cost_explorer", "window": "[2026-11-01, 2026-11-02)", "rows": 12,
                                 "note": 'say "hi"', "skipped": None})  # fmt: skip
    assert _parse(line) == {"event": "raw_landed", "table": "raw.aws_cost_explorer",
                            "window": "[2026-11-01, 2026-11-02)", "rows": "12", "note": 'say "hi"'}  # fmt: skip


def test_logfmt_never_prints_credentials():
    secrets = ["hunter2", "AKIAEXAMPLESECRET", "sv=2024&sig=abc%2Fdef", "tok-123", "pa55"]
    line = logfmt(
        "connect",
        {
            "aws_secret_access_key": secrets[1],
            "password": secrets[0],
            "tracking_uri": "https://alice:hunter2@mlflow.example.com/api?x=1",
            "export_url": "https://acct.blob.core.windows.net/c/f.csv?sp=r&sig=abc%2Fdef",
            "endpoint": "https://api.example.com/v1?token=tok-123&page=2",
            "dsn": "postgresql://bob:pa55@db:5432/x",
        },
    )
    assert not [s for s in ("hunter2", "AKIAEXAMPLESECRET", "abc%2Fdef", "tok-123", "pa55") if s in line], line
    fields = _parse(line)
    assert fields["tracking_uri"] == "https://***@mlflow.example.com/api?x=1"
    assert fields["endpoint"] == "https://api.example.com/v1?token=***&page=2"
    assert fields["export_url"].endswith("?sp=r&sig=***")
    assert redact_text("nothing secret here") == "nothing secret here"


def test_log_event_passes_redacted_fields_as_extra(caplog):
    logger = logging.getLogger("mlcost.test")
    with caplog.at_level(logging.INFO, logger="mlcost.test"):
        log_event(logger, "published", path="/w/mlcost_bi.duckdb", api_key="k-1")
    [record] = caplog.records
    assert record.getMessage() == "event=published path=/w/mlcost_bi.duckdb api_key=***"
    assert record.mlcost == {"event": "published", "path": "/w/mlcost_bi.duckdb", "api_key": "***"}


def test_native_totals_of_cost_explorer_pages_sum_unblended_cost_exactly():
    from mlcost_pipeline.sources.aws_cost_explorer import fetch_cost_and_usage
    from mlcost_pipeline.sources.sample import org
    from mlcost_pipeline.sources.sample.aws_cost_explorer import day_items

    pulled = fetch_cost_and_usage(SampleCostExplorerClient(page_size=7), DAY, date(2026, 11, 11),
                                  accounts=list(org.AWS_ACCOUNTS))  # fmt: skip
    expected = sum(i.unblended for a in org.AWS_ACCOUNTS for i in day_items(DAY, a))
    assert len(pulled.records) > 3  # several pages per account: totals must not depend on paging
    assert native_totals("raw.aws_cost_explorer", pulled.records) == {"AWS (USD)": str(expected)}


def test_native_totals_of_the_gcp_export_sum_cost_per_currency():
    rows = export_rows(DAY)
    expected = sum(Decimal(str(r["cost"])) for r in rows)
    assert native_totals("raw.gcp_billing_export", [(DAY, r) for r in rows]) == {"Google Cloud (EUR)": str(expected)}


def test_native_totals_count_unreadable_records_instead_of_failing():
    records = [(DAY, {"currency": "EUR", "cost": 1.5}), (DAY, {"currency": "EUR"}), (DAY, {"cost": "x", "currency": "EUR"})]
    assert native_totals("raw.gcp_billing_export", records) == {"Google Cloud (EUR)": "1.5", UNREADABLE: "2"}
    assert native_totals("raw.mlflow_runs", [(DAY, {"run_id": "r"})]) == {}
