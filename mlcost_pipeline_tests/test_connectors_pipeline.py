"""Done-when: every source live against its stand-in, a date range materialized in process and by the CLI.

Stand-ins: moto's server (Cost Explorer), the GCP stub (BigQuery + Cloud Billing + token endpoint), the Azure
HTTPS stub (trustme), a FOCUS export folder, and a real sqlite MLflow store. Credentials only through the SDKs'
chains: AWS keys in the environment, a Google service-account file, the Azure CLI credential (an `az` stand-in).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import trustme
from moto.server import ThreadedMotoServer

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows
from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs
from mlcost_pipeline_tests.stubs.aws import sample_pages, seed
from mlcost_pipeline_tests.stubs.azure import AzureStub, write_fake_az
from mlcost_pipeline_tests.stubs.gcp import UNIVERSE_DOMAIN, GcpStub, write_service_account
from mlcost_pipeline_tests.test_connectors_focus import write_export_folder

START, END = date(2026, 10, 1), date(2026, 10, 3)  # END inclusive, as on the command line
DAYS = [START + timedelta(days=n) for n in range((END - START).days + 1)]
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
SYSTEMS = {"aws_cost_explorer", "gcp_billing_export", "azure_cost_management", "focus_export"}
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand_ins")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    az = write_fake_az(root / "bin")
    mlflow_uri = f"sqlite:///{root / 'mlflow.db'}"
    ensure_sample_runs(mlflow_uri, DAYS)
    write_export_folder(root / "focus")
    gcp = GcpStub([r for d in DAYS for r in export_rows(d)], account_names={"01A2B3-C4D5E6-F7A8B9": "Acme ML"})
    with gcp, AzureStub(ca, page_size=5) as azure:
        key = write_service_account(root / "sa.json", gcp.url + "/token")
        env = {
            "MLCOST_SOURCES": "aws,gcp,azure,focus,mlflow",
            "MLCOST_AWS_ENDPOINT_URL": f"http://{host}:{port}", "MLCOST_AWS_ACCOUNTS": ",".join(ACCOUNTS),
            "MLCOST_AWS_PAYER_ACCOUNT": "999999999999",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "MLCOST_GCP_BILLING_TABLE": gcp.table, "MLCOST_BIGQUERY_API_ENDPOINT": gcp.url,
            "MLCOST_CLOUD_BILLING_API_ENDPOINT": gcp.url,
            "GOOGLE_APPLICATION_CREDENTIALS": str(key), "GOOGLE_CLOUD_UNIVERSE_DOMAIN": UNIVERSE_DOMAIN,
            "MLCOST_AZURE_SCOPES": "/subscriptions/00000000-0000-0000-0000-000000000000",
            "MLCOST_AZURE_BASE_URL": azure.url, "MLCOST_AZURE_CA_BUNDLE": str(root / "ca.pem"),
            "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential", "PATH": f"{az.parent}:{BIN}:/usr/bin:/bin",
            "MLCOST_FOCUS_PATH": str(root / "focus"), "MLFLOW_TRACKING_URI": mlflow_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true", "DAGSTER_DISABLE_TELEMETRY": "1",
        }  # fmt: skip
        yield env, f"http://{host}:{port}"
    moto.stop()


def _seed_cost_explorer(endpoint: str) -> None:
    seed(endpoint, sample_pages(START, END + timedelta(days=1), ACCOUNTS, page_size=20))


def _check_warehouse(path: Path) -> None:
    with duckdb.connect(str(path), read_only=True) as con:
        landed = set(con.execute("SELECT DISTINCT x_ChargeDate, x_SourceSystem FROM core.focus_costs").fetchall())
        runs = con.execute("SELECT count(*) FROM core.ml_runs").fetchall()[0][0]
        gap = con.execute("""
            SELECT count(*) FROM (SELECT x_ChargeDate d, BillingCurrency c, sum(EffectiveCost) t
                                  FROM core.focus_costs GROUP BY ALL) f
            FULL OUTER JOIN (SELECT charge_date d, billing_currency c, sum(amount) t
                             FROM core.allocated_costs GROUP BY ALL) a USING (d, c)
            WHERE f.t IS DISTINCT FROM a.t""").fetchall()[0][0]
    assert landed == {(d, s) for d in DAYS for s in SYSTEMS}
    assert runs > 0
    assert gap == 0


def test_materialize_a_range_in_process_against_every_stand_in(stand_ins, tmp_path, monkeypatch):
    env, moto = stand_ins
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _seed_cost_explorer(moto)
    settings = load_settings({**env, "MLCOST_WAREHOUSE_PATH": str(tmp_path / "mlcost.duckdb")})
    result = run_range(build_definitions(settings), START, END, dg.DagsterInstance.ephemeral())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks = result.get_asset_check_evaluations()
    assert any(e.check_name == "allocated_costs__conserves_effective_cost" and e.passed for e in checks)
    # Budget overruns are spend, not data (docs/budgets.md); the repo's budgets may be crossed by any data.
    checks = [e for e in checks if e.check_name != "budget_status__within_budget"]
    assert all(e.passed for e in checks), [e.check_name for e in checks if not e.passed]
    _check_warehouse(settings.warehouse_path)


def test_mlcost_materialize_command_against_every_stand_in(stand_ins, tmp_path):
    env, moto = stand_ins
    _seed_cost_explorer(moto)
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(
        [str(BIN / "mlcost"), "materialize", "--start", str(START), "--end", str(END)],
        env={**env, "MLCOST_WAREHOUSE_PATH": str(tmp_path / "mlcost.duckdb"), "HOME": str(tmp_path),
             "DAGSTER_HOME": str(tmp_path / "dagster_home")},
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "allocated_costs__conserves_effective_cost ok" in done.stdout.replace(":", " ")
    assert "FAILED" not in done.stdout
    _check_warehouse(tmp_path / "mlcost.duckdb")
    assert os.environ.get("AZURE_TOKEN_CREDENTIALS") is None  # the test process itself stays untouched
