"""The billing export query adapts to the table's schema: older tables lack fields and struct members, newer ones
have more. The stub really runs the query (transpiled to DuckDB) over a table of exactly the served schema, so a
query naming a field the table lacks is answered 400 as BigQuery answers it; each test also reads the query's
column references and checks every one against the served schema. Totals are computed from the input rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlglot
from google.api_core.exceptions import BadRequest
from sqlglot import exp

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.sources.gcp_billing_export import (
    BigQueryUnavailableError,
    describe_table,
    fetch_billing_export,
)
from mlcost_pipeline_tests.connector_helpers import live_settings
from mlcost_pipeline_tests.stubs.gcp import GcpStub, google_adc
from mlcost_pipeline_tests.stubs.gcp_schemas import (
    CURRENT_COLUMNS,
    EXPORT_COLUMNS,
    LEGACY_COLUMNS,
    export_row,
)

DAY = date(2026, 10, 14)
START = datetime(2026, 10, 14)
SCHEMAS = {"legacy": LEGACY_COLUMNS, "first_written": EXPORT_COLUMNS, "current": CURRENT_COLUMNS}


def _rows() -> list[dict]:
    rows = []
    for h in range(6):
        rows.append(export_row(START + timedelta(hours=h), cost=1.5 + h / 8, credits=[("sud", -0.25)] * (h % 2)))
        rows.append(export_row(START + timedelta(hours=h), cost=0.75, project="proj-b", sku="SKU-GPU",
                               labels={"team": "ml"}, zone=None))  # fmt: skip
    rows.append(export_row(START, hours=24, cost=0.42, cost_type="tax", project=None, sku="TAX"))
    return rows


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with GcpStub(_rows()) as s, google_adc(s, tmp_path_factory.mktemp("gcp_schemas")):
        yield s


def _resource(stub, root, **env):
    settings = live_settings(root, "gcp", MLCOST_GCP_BILLING_TABLE=env.pop("table", stub.table),
                             MLCOST_BIGQUERY_API_ENDPOINT=stub.url, MLCOST_CLOUD_BILLING_API_ENDPOINT=stub.url,
                             MLCOST_GCP_LIST_PRICES="false", **env)  # fmt: skip
    return build_resources(settings)["gcp_billing"]


def _served_paths(columns: dict[str, str]) -> set[str]:
    """Every field path of a served schema (struct members as `record.member`), lower case."""
    import duckdb

    from mlcost_pipeline_tests.stubs.bigquery_rows import field

    con = duckdb.connect()
    con.execute("CREATE TABLE t (" + ", ".join(f'"{k}" {v}' for k, v in columns.items()) + ")")
    out: set[str] = set()

    def walk(f: dict, prefix: str) -> None:
        out.add((prefix + f["name"]).lower())
        for member in f.get("fields", []):
            walk(member, prefix + f["name"] + ".")

    for name, typ, *_ in con.execute("DESCRIBE t").fetchall():
        walk(field(name, typ), "")
    return out


def _table_references(sql: str) -> set[str]:
    """The field paths the query reads from the table: column references in the CTE that selects FROM it
    (`c.<member>` is a member of `credits`, the UNNEST alias)."""
    src = next(cte for cte in sqlglot.parse_one(sql, read="bigquery").find_all(exp.CTE) if cte.alias == "src")
    refs = set()
    for column in src.this.find_all(exp.Column):
        parts = [p.name for p in column.parts]
        if parts[0] == "c":
            parts[0] = "credits"
        refs.add(".".join(parts).lower())
    return refs


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_the_query_names_only_what_the_table_has_and_keeps_every_cent(stub, tmp_path, schema):
    stub.load(_rows(), columns=SCHEMAS[schema])
    stub.queries.clear()
    records = _resource(stub, tmp_path).pull(DAY, DAY + timedelta(days=1))
    [sql] = stub.queries
    served = _served_paths(SCHEMAS[schema]) | {"_partitiontime"}
    assert _table_references(sql) - served == set()
    absent = {"legacy": ["location.zone", "cost_at_list", "adjustment_info", "system_labels", "credits.type",
                         "usage.amount_in_pricing_units", "transaction_type", "project.number"],
              "first_written": ["resource", "tags"], "current": ["price", "subscription", "tags"]}[schema]  # fmt: skip
    assert not [p for p in absent if p in _table_references(sql)]
    assert "project.ancestors" not in sql and "publisher_type" not in sql  # newer members are not read

    payloads = [p for _, p in records]
    rows = _rows()
    assert sum(Decimal(p["cost"]) for p in payloads) == sum(Decimal(str(r["cost"])) for r in rows)
    assert sum(Decimal(c["amount"]) for p in payloads for c in p["credits"]) == sum(
        Decimal(str(c["amount"])) for r in rows for c in r["credits"])
    assert sum(p["x_export_rows"] for p in payloads) == len(rows)
    frame = normalize_billing_export(payloads, datetime(2026, 10, 20))
    assert frame["BilledCost"].sum() == sum(
        Decimal(str(r["cost"])) + sum((Decimal(str(c["amount"])) for c in r["credits"]), Decimal(0)) for r in rows)
    zones = set(frame["AvailabilityZone"].drop_nulls())
    assert zones == (set() if schema == "legacy" else {"europe-west4-a"})  # a missing member is NULL, not an error
    list_cost = frame.filter(frame["ChargeCategory"] == "Usage")["ListCost"].sum()
    expected_list = sum(Decimal(str(r["cost_at_list"] if "cost_at_list" in SCHEMAS[schema] else r["cost"]))
                        for r in rows if r["cost_type"] == "regular")  # fmt: skip
    assert list_cost == expected_list


def test_the_stub_answers_400_for_a_field_the_table_lacks(stub, tmp_path):
    """The stand-in is as strict as BigQuery: the adaptive query is not passing because the stub is lenient."""
    from google.cloud import bigquery

    stub.load(_rows(), columns=LEGACY_COLUMNS)
    client = bigquery.Client(project="acme-billing", client_options={"api_endpoint": stub.url})
    with pytest.raises(BadRequest, match="zone"):
        client.query_and_wait(f"SELECT location.zone FROM `{stub.table}`")
    # and the query built for today's schema, sent to the older table, is refused the same way
    stub.load(_rows(), columns=CURRENT_COLUMNS)
    current = describe_table(client, stub.table)
    stub.load(_rows(), columns=LEGACY_COLUMNS)
    with pytest.raises(BigQueryUnavailableError, match=r"BigQuery query failed: BadRequest: 400"):
        fetch_billing_export(client, current, DAY, DAY + timedelta(days=1))
    stub.load(_rows())


def test_a_table_missing_what_the_money_needs_is_refused_naming_the_column(stub, tmp_path):
    stub.load(_rows(), columns={k: v for k, v in LEGACY_COLUMNS.items() if k != "credits"})
    try:
        with pytest.raises(ValueError, match=rf"table {stub.table} is not a billing export: column credits.amount"):
            _resource(stub, tmp_path).pull(DAY, DAY + timedelta(days=1))
    finally:
        stub.load(_rows())


@pytest.mark.parametrize("setting", [
    "acme-billing.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9,"
    "acme-billing.billing.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9",
    "acme-billing.billing.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9 "
    "acme-billing.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
])  # fmt: skip
def test_naming_the_standard_and_the_detailed_table_is_refused_before_any_call(stub, tmp_path, setting):
    stub.server.requests.clear()
    with pytest.raises(ValueError) as err:
        _resource(stub, tmp_path, table=setting).pull(DAY, DAY + timedelta(days=1))
    message = str(err.value)
    assert message.startswith(f"gcp_billing_export partition {DAY}: MLCOST_GCP_BILLING_TABLE names both the "
                              "standard and the detailed billing export")  # fmt: skip
    assert "count each charge twice" in message
    assert "the detailed one (acme-billing.billing.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9)" in message
    assert stub.server.requests == []  # not even tables.get


def test_two_tables_of_any_kind_are_refused(stub, tmp_path):
    with pytest.raises(ValueError, match="names 2 tables .*; name exactly one"):
        _resource(stub, tmp_path, table="a.b.gcp_billing_export_v1_A, a.b.gcp_billing_export_v1_B").pull(
            DAY, DAY + timedelta(days=1))
