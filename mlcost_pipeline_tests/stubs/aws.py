"""Seeding moto's Cost Explorer with the pages a real GetCostAndUsage series would return.

moto answers `get_cost_and_usage` from a FIFO queue of canned results, one per distinct request body (a repeated
identical request gets the same page back). The pages queued here are what the sample organization's Cost
Explorer answers to the very requests the connector will send, in the order it sends them, so a multi-page,
multi-account series comes back through boto3 and moto exactly as the connector would page through it.
"""

from __future__ import annotations

import copy
from datetime import date

import requests

from mlcost_pipeline.sources.aws_cost_explorer import fetch_cost_and_usage
from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient


class _Recording:
    def __init__(self, inner):
        self.inner = inner
        self.pages: list[dict] = []

    def get_cost_and_usage(self, **kwargs):
        page = self.inner.get_cost_and_usage(**kwargs)
        self.pages.append(copy.deepcopy(page))
        return page


def sample_pages(start: date, end: date, accounts: list[str], page_size: int = 25, **kwargs) -> list[dict]:
    recording = _Recording(SampleCostExplorerClient(today=date(2026, 11, 22), page_size=page_size))
    fetch_cost_and_usage(recording, start, end, accounts=accounts, **kwargs)
    return recording.pages


def seed(endpoint: str, pages: list[dict], reset: bool = True) -> None:
    if reset:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    answer = requests.post(f"{endpoint}/moto-api/static/ce/cost-and-usage-results", json={"results": pages}, timeout=10)
    assert answer.status_code == 201, answer.text
