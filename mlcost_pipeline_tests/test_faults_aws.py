"""Cost Explorer failing mid-pagination: the real boto3 `ce` client against a local stand-in that speaks AWS JSON.

moto cannot inject faults, so this stub answers GetCostAndUsage (`X-Amz-Target:
AWSInsightsIndexService.GetCostAndUsage`) with the sample organization's pages in request order, and a script
of faults by request number: an AWS-shaped 5xx, a 429 ThrottlingException, Cost Explorer's own 400
LimitExceededException, a TCP reset, or an answer slower than the client's read timeout. botocore's adaptive
retry mode (the production config) must retry them with backoff, up to MLCOST_AWS_MAX_ATTEMPTS; past that the
partition fails, the previous data stays, and a rerun completes. A page served twice must not be counted twice.
"""

from __future__ import annotations

import copy
import json
import socket
import struct
import threading
import time
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import duckdb
import pytest
from botocore.config import Config

from mlcost_pipeline.sources.aws_cost_explorer import fetch_cost_and_usage
from mlcost_pipeline.sources.landing_checks import SourceDataError
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.aws import sample_pages

ACCOUNTS = ["111111111111", "222222222222"]
DAY = date(2026, 10, 5)


class CostExplorerStub:
    """Serves `pages` one per successful request; `faults[n]` replaces the answer to request number n (from 0)."""

    def __init__(self):
        self.pages: list[dict] = []
        self.faults: dict[int, str] = {}
        self.fail_from: int | None = None  # every request from this number on fails with 503
        self.requests = 0
        self.served = 0
        self.times: list[float] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                assert self.headers.get("X-Amz-Target") == "AWSInsightsIndexService.GetCostAndUsage"
                json.loads(body)
                n = outer.requests
                outer.requests += 1
                outer.times.append(time.monotonic())
                fault = outer.faults.get(n) or ("503" if outer.fail_from is not None and n >= outer.fail_from else None)
                if fault == "reset":  # RST instead of an answer: the client sees a connection reset
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault == "timeout":  # answers after the client gave up: that page is not consumed
                    time.sleep(1.5)
                    return self._answer(200, outer.pages[min(outer.served, len(outer.pages) - 1)])
                if fault in ("500", "503"):
                    return self._answer(int(fault), {"__type": "InternalServerError", "message": "stub fault"})
                if fault == "429":
                    return self._answer(429, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                if fault == "limit":
                    return self._answer(400, {"__type": "LimitExceededException", "message": "Rate exceeded"})
                page = outer.pages[min(outer.served, len(outer.pages) - 1)]
                outer.served += 1
                return self._answer(200, page)

            def _answer(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                try:
                    self._send(status, data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "stub")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, pages: list[dict], faults: dict[int, str] | None = None) -> None:
        self.pages, self.faults, self.fail_from = copy.deepcopy(pages), dict(faults or {}), None
        self.requests = self.served = 0
        self.times.clear()


@pytest.fixture(scope="module")
def stub():
    s = CostExplorerStub()
    thread = threading.Thread(target=s.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(scope="module")
def pages():
    pages = sample_pages(DAY, date(2026, 10, 6), ACCOUNTS, page_size=4)
    assert len(pages) >= 4  # several pages per account: faults land mid-pagination
    return pages


def _client(stub, max_attempts=4, read_timeout=60):
    # The production client config (defs/source_resources.AwsCostExplorerResource._client), pointed at the stub.
    return boto3.client("ce", region_name="us-east-1", endpoint_url=stub.url, config=Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts}, read_timeout=read_timeout, connect_timeout=2))


def _unblended(records) -> Decimal:
    return sum((Decimal(g["Metrics"]["UnblendedCost"]["Amount"]) for _, p in records
                for r in p["response"]["ResultsByTime"] for g in r["Groups"]), Decimal(0))  # fmt: skip


def _pages_unblended(pages) -> Decimal:
    return sum((Decimal(g["Metrics"]["UnblendedCost"]["Amount"]) for p in pages for r in p["ResultsByTime"]
                for g in r["Groups"]), Decimal(0))  # fmt: skip


@pytest.mark.parametrize("fault", ["500", "503", "429", "limit", "reset", "timeout"])
def test_a_fault_mid_pagination_is_retried_and_nothing_is_lost_or_doubled(stub, pages, fault):
    stub.reset(pages, {2: fault})  # the third request: page 1 and 2 are in, page 3 fails once
    pull = fetch_cost_and_usage(_client(stub, read_timeout=0.5), DAY, date(2026, 10, 6), accounts=ACCOUNTS)
    assert stub.requests == len(pages) + 1  # retried once
    assert pull.requests == len(pages)  # billed pages counted once
    assert _unblended(pull.records) == _pages_unblended(pages) > 0


def test_retries_back_off_and_stop_at_the_bound(stub, pages):
    stub.reset(pages)
    stub.fail_from = 1
    with pytest.raises(Exception, match=r"GetCostAndUsage.*reached max retries"):
        fetch_cost_and_usage(_client(stub, max_attempts=3), DAY, date(2026, 10, 6), accounts=ACCOUNTS)
    # botocore's `max_attempts` counts retries after the first attempt: one good page, then 1 + 3 tries at page 2.
    assert stub.requests == 1 + 1 + 3


def test_a_page_served_twice_is_refused_not_counted_twice(stub, pages):
    doubled = [pages[0], pages[1], pages[1], *pages[2:]]  # same page again (a retried request answered twice)
    stub.reset(doubled)
    with pytest.raises(SourceDataError, match="duplicate page"):
        fetch_cost_and_usage(_client(stub), DAY, date(2026, 10, 6), accounts=ACCOUNTS)


def test_a_next_page_token_loop_is_refused(stub, pages):
    first = copy.deepcopy(pages[0])
    looping = [first, {**copy.deepcopy(pages[1]), "NextPageToken": first["NextPageToken"]}, copy.deepcopy(first)]
    looping[2]["ResultsByTime"][0]["Groups"] = []  # an empty page with the same token: no groups to catch it
    stub.reset([looping[0], looping[1], looping[2], looping[2]])
    with pytest.raises(SourceDataError, match="pagination loop"):
        fetch_cost_and_usage(_client(stub), DAY, date(2026, 10, 6), accounts=ACCOUNTS)


def _day_total(settings) -> Decimal:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT sum(BilledCost) FROM core.focus_costs WHERE x_ChargeDate = $d", {"d": DAY}).fetchall()
    return rows[0][0]


def test_giving_up_fails_the_partition_keeps_the_previous_data_and_a_rerun_completes(stub, pages, tmp_path):
    settings = live_settings(tmp_path, "aws", MLCOST_AWS_ENDPOINT_URL=stub.url, MLCOST_AWS_ACCOUNTS=",".join(ACCOUNTS),
                             MLCOST_AWS_MAX_ATTEMPTS="2")  # fmt: skip
    stub.reset(pages)
    assert materialize_day(settings, "raw.aws_cost_explorer", DAY).success
    clean = _day_total(settings)
    assert clean == _pages_unblended(pages)

    stub.reset(pages)
    stub.fail_from = 2  # dies mid-pagination, after two good pages
    message = assert_bad_answer_keeps_day(settings, "raw.aws_cost_explorer", DAY, "GetCostAndUsage", "max retries")
    assert "InternalServerError" in message

    stub.reset(pages)
    result = materialize_day(settings, "raw.aws_cost_explorer", DAY)
    assert result.success, failure_message(result)
    assert _day_total(settings) == clean
