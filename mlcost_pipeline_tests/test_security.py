"""Secrets stay out of logs, event metadata, the warehouse and the BI snapshot; config never shows them; UI is local.

One pipeline run for a day: every source in sample mode except AWS Cost Explorer, live through boto3 against
moto's server, with fake credentials for every cloud in the environment (AWS key, secret and session token, an
Azure client secret, a Google service-account key file, an MLflow password). Everything a user or an attacker
could read afterwards is searched for the secret values.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from moto.server import ThreadedMotoServer

import mlcost_pipeline.definitions as definitions
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.snapshot import publish_bi_snapshot
from mlcost_pipeline_tests.connector_helpers import live_settings
from mlcost_pipeline_tests.stubs.aws import sample_pages, seed

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 7)
ACCOUNTS = ["111111111111", "222222222222"]
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "FAKEawsSecretKey0123456789abcdefXYZ",
    "AWS_SESSION_TOKEN": "FAKEawsSessionToken9876543210zyxw",
    "AZURE_CLIENT_SECRET": "FAKEazureClientSecret~q8Q.xyz",
    "MLFLOW_TRACKING_PASSWORD": "FAKEmlflowPassw0rd!",
}
GOOGLE_KEY = "FAKEgooglePrivateKeyMIIEvQIBADANBg"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    key_file = root / "sa.json"
    key_file.write_text(json.dumps({"type": "service_account", "client_email": "x@p.iam.gserviceaccount.com",
                                    "private_key": GOOGLE_KEY, "private_key_id": "k1"}))  # fmt: skip
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    seed(endpoint, sample_pages(DAY, date(2026, 10, 8), ACCOUNTS, page_size=25))
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample"})
    live_aws = build_resources(live_settings(root, "aws", MLCOST_AWS_ENDPOINT_URL=endpoint,
                                             MLCOST_AWS_ACCOUNTS=",".join(ACCOUNTS)))["aws_billing"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {**SECRETS, "AWS_ACCESS_KEY_ID": "AKIAFAKEACCESSKEY", "AZURE_CLIENT_ID": "c",
                     "AZURE_TENANT_ID": "t", "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}.items():  # fmt: skip
            mp.setenv(k, v)
        mp.setattr(definitions, "build_resources", lambda s: {**build_resources(s), "aws_billing": live_aws})
        defs = definitions.build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        yield root, settings, defs, instance
    server.stop()


@pytest.fixture(scope="module")
def outputs(run, capfd_module):
    root, settings, defs, instance = run
    capfd_module.start()
    handler_text: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: handler_text.append(handler.format(record))
    logging.getLogger().addHandler(handler)
    try:
        result = run_range(defs, DAY, DAY, instance, log_level="DEBUG")
        published = publish_bi_snapshot(settings.warehouse_path, run_id=result.run_id)
    finally:
        logging.getLogger().removeHandler(handler)
        out, err = capfd_module.stop()
    assert result.success
    entries = instance.all_logs(result.run_id)
    events = [serialize_value(e) for e in entries if e.dagster_event and e.dagster_event.is_step_materialization]
    assert events
    logs = [serialize_value(e) for e in entries]
    return {"stdout+stderr": out + err, "python logging": "\n".join(handler_text), "event log": "\n".join(logs),
            "materialization metadata": "\n".join(events), "warehouse": _dump(settings.warehouse_path),
            "bi snapshot": _dump(Path(published.path)) + Path(published.path).read_bytes().decode("latin-1")}


class _Capfd:
    """A module-scoped stand-in for pytest's capfd: the run is shared by the tests below."""

    def __init__(self):
        from _pytest.capture import FDCapture

        self._caps = [FDCapture(1), FDCapture(2)]

    def start(self):
        for c in self._caps:
            c.start()

    def stop(self):
        out, err = (c.snap() for c in self._caps)
        for c in self._caps:
            c.done()
        return out, err


@pytest.fixture(scope="module")
def capfd_module():
    return _Capfd()


def _dump(path: Path) -> str:
    """Every value of every table, as text."""
    parts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        for schema, table in tables:
            rows = con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            parts.append(f"{schema}.{table}: {rows!r}")
    return "\n".join(parts)


def test_the_run_landed_live_and_sample_data(outputs):
    assert "raw.aws_cost_explorer" in outputs["warehouse"] and "111111111111" in outputs["warehouse"]
    assert "DEBUG" in outputs["stdout+stderr"] or outputs["event log"]  # the logs were captured at all


@pytest.mark.parametrize("where", ["stdout+stderr", "python logging", "event log", "materialization metadata",
                                   "warehouse", "bi snapshot"])  # fmt: skip
def test_no_secret_appears(outputs, where):
    text = outputs[where]
    assert text, f"nothing captured from {where}"
    for secret in [*SECRETS.values(), GOOGLE_KEY]:
        assert secret not in text, f"{secret[:8]}... leaked into {where}"


def test_a_live_mlflow_uri_with_a_password_is_not_in_the_definitions_config(monkeypatch, tmp_path):
    uri = "https://alice:s3cr3t-in-uri@mlflow.example.internal/"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "MLCOST_SOURCES": "mlflow",
                              "MLFLOW_TRACKING_URI": uri})  # fmt: skip
    repo = definitions.build_definitions(settings).get_repository_def()
    shown = serialize_value(RepositorySnap.from_def(repo))  # what the UI and `dagster definitions` show
    assert "s3cr3t-in-uri" not in shown
    assert "MLFLOW_TRACKING_URI" in shown  # shown as the variable's name


def test_ui_binds_to_localhost_by_default():
    makefile = (ROOT / "Makefile").read_text()
    ui = re.search(r"^ui:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert ui, "Makefile has no ui target"
    command = ui.group(1)
    assert "dagster dev" in command or "dg dev" in command
    assert re.search(r"(-h|--host) 127\.0\.0\.1\b", command), command
    assert "0.0.0.0" not in command
