"""Hypothesis fuzzing: the normalizers and the rules loader return conformed output or raise their documented error.

Each normalizer gets a real sample answer (Cost Explorer pages, Azure query pages, GCP export rows, a FOCUS CSV)
with up to three values replaced by arbitrary JSON (NaN, huge numbers, wrong types, dates without zones, ...) or
deleted. The promise: a frame with exactly the core.focus_costs schema, or NormalizationError, nothing else
(landing_checks turns NormalizationError into the partition's SourceDataError). The rules loader gets arbitrary
YAML text and arbitrary structures under the real keys: a loaded rule set, or RulesError.
"""

from __future__ import annotations

import copy
import csv
import io
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcost_pipeline.allocation.rules import RulesError, load_rules
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
from mlcost_pipeline.normalize.azure_cost_management import normalize_cost_query
from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.normalize.focus_schema import POLARS_SCHEMA, NormalizationError
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.settings import load_settings

DAY = date(2026, 10, 5)
NOW = datetime(2026, 10, 6, 12)
BAD = Path(__file__).resolve().parent / "fixtures" / "bad"
ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY = st.sampled_from(["NaN", "Infinity", "-inf", "1e30", "-1e-30", "", " ", "12,5", "0x10", "USD", "XYZ", "usd",
                          "2026-10-05", "2026-10-05T00:00:00", "2026-10-04T23:00:00-05:00", "2026-13-45",
                          "'); DROP TABLE x; --", "数据🚀", "{}", "[]", "null"])  # fmt: skip
LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | TRICKY
VALUE = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=6)
DELETE = object()


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutated(base: list[dict], path, value) -> list[dict]:
    out = copy.deepcopy(base)
    if not path:
        return out
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def mutations(base: list[dict]):
    paths = [p for p in _paths(base) if p]
    return st.lists(st.tuples(st.sampled_from(paths), VALUE | st.just(DELETE)), min_size=1, max_size=3)


def _apply(base, muts):
    out = base
    for path, value in muts:
        try:
            out = _mutated(out, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the path
    return out


def _assert_conformed_or_documented(normalize, payloads):
    try:
        frame = normalize(payloads, NOW)
    except NormalizationError:
        return
    assert dict(frame.schema) == dict(POLARS_SCHEMA)


def _sample(resource: str) -> list[dict]:
    env = {"MLCOST_WAREHOUSE_PATH": "/nonexistent/mlcost.duckdb", "MLCOST_SOURCES": "sample"}
    records = build_resources(load_settings(env))[resource].pull(DAY, date(2026, 10, 6))
    return [payload for _, payload in records]


AWS_BASE = _sample("aws_billing")[:2]
AZURE_BASE = _sample("azure_cost")[:2]
GCP_BASE = _sample("gcp_billing")[:3]


@pytest.mark.parametrize("normalize,base", [(normalize_cost_explorer, AWS_BASE), (normalize_cost_query, AZURE_BASE),
                                            (normalize_billing_export, GCP_BASE)], ids=["aws", "azure", "gcp"])  # fmt: skip
def test_the_unmutated_samples_normalize(normalize, base):
    assert normalize(copy.deepcopy(base), NOW).height > 0


@FUZZ
@given(st.data())
def test_fuzz_cost_explorer_pages(data):
    _assert_conformed_or_documented(normalize_cost_explorer, _apply(AWS_BASE, data.draw(mutations(AWS_BASE))))


@FUZZ
@given(st.data())
def test_fuzz_azure_query_pages(data):
    _assert_conformed_or_documented(normalize_cost_query, _apply(AZURE_BASE, data.draw(mutations(AZURE_BASE))))


@FUZZ
@given(st.data())
def test_fuzz_gcp_export_rows(data):
    _assert_conformed_or_documented(normalize_billing_export, _apply(GCP_BASE, data.draw(mutations(GCP_BASE))))


with open(BAD / "focus_good.csv", newline="") as _f:
    FOCUS_ROWS = list(csv.DictReader(_f))
CELL = st.text(max_size=12) | TRICKY | st.sampled_from(["12.50", "-3", "0", "Usage", "Credit", '{"a":"b"}'])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(list(FOCUS_ROWS[0])), CELL), min_size=1,
                        max_size=4))  # fmt: skip
def test_fuzz_focus_rows(tmp_path_factory, changes):
    rows = copy.deepcopy(FOCUS_ROWS)
    for i, column, value in changes:
        rows[i][column] = value
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(FOCUS_ROWS[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("focus") / "fuzz.csv"
    path.write_text(buf.getvalue())
    with duckdb.connect() as con:
        _assert_conformed_or_documented(
            lambda _payloads, now: read_focus_export(con, [str(path)], date(2026, 10, 1), date(2026, 10, 2), now), None)


RULES = yaml.safe_load((ROOT / "rules" / "allocation.yaml").read_text())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_rules_loader(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("rules")
    if data.draw(st.booleans()):
        text = data.draw(st.text(max_size=200) | st.sampled_from(["!!python/object/apply:os.system ['true']",
                                                                  "a: &x [*x]", "- [", "{", "version: 99"]))
    else:
        mutated = _apply([copy.deepcopy(RULES)], data.draw(mutations([RULES])))
        rules = mutated[0] if mutated else None  # a mutation may delete the whole document
        text = yaml.safe_dump(rules, allow_unicode=True)
    path = folder / "rules.yaml"
    path.write_text(text)
    for name in ("fx_rates.csv",):  # files the real rules name, so a valid mutation can still load
        src = ROOT / "rules" / name
        if src.exists():
            (folder / name).write_bytes(src.read_bytes())
    try:
        load_rules(path)
    except RulesError as exc:
        assert str(exc).startswith(str(path)), exc
