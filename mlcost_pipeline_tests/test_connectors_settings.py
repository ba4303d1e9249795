"""Connector settings: what a user sets in the environment, and the errors a typo gets."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.settings import load_settings


def test_live_sources_take_their_settings_and_others_are_off():
    settings = load_settings({
        "MLCOST_WAREHOUSE_PATH": "/data/wh/mlcost.duckdb", "MLCOST_SOURCES": "aws,focus",
        "MLCOST_AWS_ACCOUNTS": "1, 2", "MLCOST_AWS_ENDPOINT_URL": "https://vpce.example", "MLCOST_AWS_MAX_REQUESTS": "40",
        "MLCOST_FOCUS_PATH": "s3://b/focus/,/exports/*.parquet", "MLCOST_AZURE_SCOPES": "/subscriptions/x",
    })  # fmt: skip
    resources = build_resources(settings)
    aws = resources["aws_billing"]
    assert (aws.mode, aws.accounts, aws.endpoint_url, aws.max_requests) == ("live", ["1", "2"], "https://vpce.example", 40)
    assert resources["focus_export"].paths == ["s3://b/focus/", "/exports/*.parquet"]
    assert Path(resources["focus_export"].cache_dir) == Path("/data/wh/focus_cache")
    assert {resources[k].mode for k in ("gcp_billing", "azure_cost", "mlflow")} == {"off"}


def test_sample_mode_ignores_live_settings():
    resources = build_resources(load_settings({"MLCOST_AWS_ACCOUNTS": "1", "MLCOST_AZURE_BASE_URL": "https://x"}))
    assert resources["aws_billing"].mode == "sample" and len(resources["aws_billing"].accounts) == 3
    assert resources["azure_cost"].base_url == "https://management.azure.com"


@pytest.mark.parametrize("env, message", [
    ({"MLCOST_AWS_MAX_REQUESTS": "0"}, "MLCOST_AWS_MAX_REQUESTS: must be positive"),
    ({"MLCOST_AWS_MAX_REQUESTS": "lots"}, "MLCOST_AWS_MAX_REQUESTS: not an integer"),
    ({"MLCOST_GCP_EXPORT_KIND": "partial"}, "MLCOST_GCP_EXPORT_KIND"),
    ({"MLCOST_GCP_LIST_PRICES": "maybe"}, "not a true/false value"),
])  # fmt: skip
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(env)


def test_live_sources_without_their_location_say_which_setting_is_missing(tmp_path):
    resources = build_resources(load_settings({"MLCOST_SOURCES": "gcp,azure,focus",
                                               "MLCOST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb")}))
    with pytest.raises(ValueError, match="MLCOST_GCP_BILLING_TABLE"):
        resources["gcp_billing"].pull(date(2026, 10, 1), date(2026, 10, 2))
    with pytest.raises(ValueError, match="MLCOST_AZURE_SCOPES"):
        resources["azure_cost"].pull(date(2026, 10, 1), date(2026, 10, 2))
    with pytest.raises(ValueError, match="MLCOST_FOCUS_PATH is not set"):
        resources["focus_export"].files(date(2026, 10, 1), date(2026, 10, 2))
