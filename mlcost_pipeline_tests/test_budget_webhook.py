"""The budget-alert webhook against a real local HTTP server (stubs/http.py): the Slack-compatible body it
receives, one POST per run with only undelivered alerts, failures recorded and retried, and the URL's secret
never shown (logs, events, metadata, the alerts table)."""

from __future__ import annotations

import socket
from datetime import date
from decimal import Decimal

import dagster as dg
import pytest

from mlcost_pipeline.budgets.alerts import Alert
from mlcost_pipeline.budgets.webhook import WebhookUrlError, check_url, message, post, redact_url
from mlcost_pipeline_tests.budget_fixtures import make_warehouse, query, run_budgets
from mlcost_pipeline_tests.stubs.http import JsonServer

SECRET_PATH = "/services/T0ACME/B0BUDGET/s3cr3tT0k3nXYZ"


class Hook:
    """A Slack-like incoming webhook: records each JSON body; answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[object] = []
        self.status = 200

    def __call__(self, method, path, query, headers, body):
        assert (method, path, headers.get("Content-Type")) == ("POST", SECRET_PATH, "application/json")
        self.bodies.append(body)
        return self.status, ({"ok": True} if self.status == 200 else {"error": "boom"}), {}


@pytest.fixture
def hook():
    handler = Hook()
    with JsonServer(handler) as server:
        yield handler, server.url + SECRET_PATH


def _logged(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def _everything_shown(result: dg.ExecuteInProcessResult, path, instance: dg.DagsterInstance) -> str:
    """Every log line and event, every materialization's metadata, every alerts-table value, as one text."""
    parts = _logged(instance, result) + [str(e.message) for e in result.all_events]
    for event in result.get_asset_materialization_events():
        parts += [str(v.value) for v in event.materialization.metadata.values()]
    parts += [str(row) for row in query(path, "SELECT * FROM marts.budget_alerts")]
    return "\n".join(parts)


def test_new_alerts_are_posted_once_as_slack_text(tmp_path, hook):
    handler, url = hook
    path = make_warehouse(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    result = run_budgets(path, tmp_path / "budgets.yaml", {"MLCOST_BUDGET_WEBHOOK_URL": url}, instance)
    assert len(handler.bodies) == 1
    body = handler.bodies[0]
    assert list(body) == ["text"]
    lines = body["text"].splitlines()
    assert lines[0] == "mlcost: 7 new budget alert(s)"
    assert lines[1] == (
        "• ERROR project a (2026-11): forecast month-end cost 354.00 USD is 118.00% of the 300.00 USD budget "
        "(threshold 100%, as of 2026-11-10)"
    )
    assert sum(line.startswith("• ERROR") for line in lines) == 3 and sum("• WARN" in x for x in lines) == 4
    assert (
        "• WARN project b / model m1 (2026-11): month-to-date cost 10.00 USD is 83.33% of the 12.00 USD"
        in body["text"]
    )
    assert query(path, "SELECT DISTINCT delivery, delivery_attempts FROM marts.budget_alerts") == [
        ("sent", 1)
    ]
    assert query(path, "SELECT count(*) FROM marts.budget_alerts WHERE delivered_at IS NULL")[0][0] == 0
    assert SECRET_PATH not in _everything_shown(result, path, instance)
    run_budgets(path, tmp_path / "budgets.yaml", {"MLCOST_BUDGET_WEBHOOK_URL": url})
    assert len(handler.bodies) == 1  # a rerun raises nothing new, so nothing is posted


def test_a_failing_webhook_is_recorded_checked_and_retried_without_showing_the_url(tmp_path, hook):
    handler, url = hook
    handler.status = 500
    path = make_warehouse(tmp_path)
    env = {"MLCOST_BUDGET_WEBHOOK_URL": url}
    instance = dg.DagsterInstance.ephemeral()
    failed = run_budgets(path, tmp_path / "budgets.yaml", env, instance)  # the run itself succeeds
    port = url.split(":")[2].split("/")[0]
    assert query(
        path, "SELECT DISTINCT delivery, delivery_error, delivery_attempts FROM marts.budget_alerts"
    ) == [("failed", f"HTTP 500 from http://127.0.0.1:{port}/…", 1)]
    check = {e.check_name: e for e in failed.get_asset_check_evaluations()}["budget_alerts__delivered"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["undelivered"].value == 7
    logged = [m for m in _logged(instance, failed) if "budget webhook" in m]
    assert logged == [f"budget webhook http://127.0.0.1:{port}/…: HTTP 500 from http://127.0.0.1:{port}/…; "
                      "7 alert(s) kept for the next run"]  # fmt: skip
    shown = _everything_shown(failed, path, instance)
    assert "s3cr3t" not in shown and SECRET_PATH not in shown
    handler.status = 200
    retried = run_budgets(path, tmp_path / "budgets.yaml", env)
    assert len(handler.bodies) == 2 and handler.bodies[1]["text"].startswith("mlcost: 7 new budget alert(s)")
    assert query(
        path, "SELECT DISTINCT delivery, delivery_error, delivery_attempts FROM marts.budget_alerts"
    ) == [("sent", None, 2)]
    assert {e.check_name: e for e in retried.get_asset_check_evaluations()}["budget_alerts__delivered"].passed


def test_unreachable_webhook_error_names_no_secret():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}?token=abc123secret"
    delivery = post(url, {"text": "x"}, timeout=2)
    assert not delivery.ok and delivery.status is None
    assert delivery.error.startswith("ConnectionRefusedError posting to http://127.0.0.1:")
    assert "s3cr3t" not in delivery.error and "abc123secret" not in delivery.error


def test_url_redaction_and_validation():
    assert redact_url("https://hooks.slack.com/services/T0/B0/XYZ?x=1") == "https://hooks.slack.com/…"
    assert redact_url("https://user:pw@example.com:8443/hook") == "https://example.com:8443/…"
    with pytest.raises(WebhookUrlError) as exc:
        check_url("ftp://example.com/s3cr3t")
    assert "s3cr3t" not in str(exc.value) and "MLCOST_BUDGET_WEBHOOK_URL" in str(exc.value)


def test_message_caps_long_lists():
    alert = Alert(date(2026, 11, 1), "p", "p", None, "actual", "WARN", Decimal(80), Decimal("80"), Decimal("100"),
                  "USD", date(2026, 11, 10))  # fmt: skip
    text = message([alert] * 25)["text"]
    assert text.splitlines()[0] == "mlcost: 25 new budget alert(s)"
    assert len(text.splitlines()) == 22 and text.endswith("… and 5 more in marts.budget_alerts")


def test_webhook_url_from_the_environment_is_an_env_var_in_the_resource(tmp_path, monkeypatch):
    from mlcost_pipeline.defs.budgets import build_budget_defs
    from mlcost_pipeline.settings import load_settings

    make_warehouse(tmp_path)
    url = "https://hooks.example.com" + SECRET_PATH
    monkeypatch.setenv("MLCOST_BUDGET_WEBHOOK_URL", url)
    monkeypatch.setenv("MLCOST_BUDGETS", str(tmp_path / "budgets.yaml"))
    _, _, resources = build_budget_defs(load_settings())
    # The run config and the UI show the variable's name; the value is read when the run starts.
    config = resources["budget_webhook"].get_resource_definition().config_schema.default_value
    assert "s3cr3t" not in str(config) and "MLCOST_BUDGET_WEBHOOK_URL" in str(config)
