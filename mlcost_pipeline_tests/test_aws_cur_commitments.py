"""AWS CUR -> FOCUS on commitment, discount, tax and credit lines, in every layout AWS delivers.

The lines and the writers are test_aws_cur_shapes'; every file goes through the production reader.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import duckdb
import pytest

from mlcost_pipeline.normalize.focus_export import summarize_file
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline_tests.test_aws_cur_shapes import (
    FOCUS_FIELDS,
    MONTH,
    SHAPES,
    amortized,
    dec,
    expected_by_day,
    focus_by_day,
    lines,
    read_cur,
    write_shape,
)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


@pytest.mark.parametrize("shape", SHAPES)
def test_per_day_billed_is_the_unblended_total_and_effective_the_amortized_view(tmp_path, con, shape):
    rows = lines()
    df = read_cur(con, write_shape(shape, rows, tmp_path / shape))
    assert focus_by_day(df) == expected_by_day(rows)
    assert summarize_file(con, str(tmp_path / shape / SHAPES[shape][1]), *MONTH).dataset == SHAPES[shape][2]


def test_the_three_layouts_give_the_same_focus_rows(tmp_path, con):
    rows = lines()
    got = {}
    for shape in SHAPES:
        df = read_cur(con, write_shape(shape, rows, tmp_path / shape)).select(FOCUS_FIELDS)
        got[shape] = sorted(df.iter_rows(), key=repr)
    first = got["legacy-csv"]
    assert len(first) == len(rows) + 2  # the two recurring fees with unused commitment get their unused row
    for shape, found in got.items():
        assert found == first, shape


def _by_description(df) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in df.iter_rows(named=True):
        out[r["ChargeDescription"]].append(r)
    return out


@pytest.mark.parametrize("shape", ["legacy-csv", "cur2-parquet"])
def test_commitment_lines_follow_focus_purchase_and_unused_rows(tmp_path, con, shape):
    """A fee is a Purchase with EffectiveCost 0; its unused commitment a Usage row (Unused, BilledCost 0)."""
    rows = {r["identity/LineItemId"]: r for r in lines()}
    got = _by_description(read_cur(con, write_shape(shape, list(rows.values()), tmp_path)))

    def one(line_id: str) -> list[dict]:
        line = rows[line_id]
        return sorted(got[line["lineItem/LineItemDescription"]], key=lambda r: r["ChargeCategory"])

    for line_id in ("rifee-partly-used", "sp-recurring"):
        purchase, unused = sorted(one(line_id), key=lambda r: r["ChargeCategory"] != "Purchase")
        assert (purchase["ChargeCategory"], purchase["BilledCost"], purchase["EffectiveCost"]) == (
            "Purchase", dec(rows[line_id]["lineItem/UnblendedCost"]), 0)
        assert (unused["ChargeCategory"], unused["CommitmentDiscountStatus"], unused["BilledCost"]) == (
            "Usage", "Unused", 0)
        assert unused["EffectiveCost"] == amortized(rows[line_id]) != 0
        assert unused["PricingCategory"] == "Committed"
        assert unused["ChargePeriodStart"] == datetime(2026, 11, 1)
    [fully_used] = one("rifee-fully-used")
    assert (fully_used["ChargeCategory"], fully_used["EffectiveCost"]) == ("Purchase", 0)
    for line_id in ("fee-ri-upfront", "sp-upfront"):
        [fee] = one(line_id)
        assert (fee["ChargeCategory"], fee["EffectiveCost"], fee["BilledCost"]) == (
            "Purchase", 0, dec(rows[line_id]["lineItem/UnblendedCost"]))
    [covered] = one("sp-covered")
    assert (covered["CommitmentDiscountStatus"], covered["PricingCategory"],
            covered["CommitmentDiscountType"]) == ("Used", "Committed", "Savings Plan")
    assert covered["EffectiveCost"] == dec(rows["sp-covered"]["savingsPlan/SavingsPlanEffectiveCost"])
    [negation] = one("sp-negation")
    assert (negation["BilledCost"], negation["EffectiveCost"], negation["ListCost"]) == (
        dec(rows["sp-negation"]["lineItem/UnblendedCost"]), 0, 0)
    [ri_usage] = one("ri-covered-day3")
    assert (ri_usage["BilledCost"], ri_usage["CommitmentDiscountType"],
            ri_usage["CommitmentDiscountCategory"]) == (0, "Reservation", "Usage")
    on_demand_equivalent = dec(rows["ri-covered-day3"]["pricing/publicOnDemandCost"])
    assert ri_usage["ListCost"] == ri_usage["ContractedCost"] == on_demand_equivalent
    for line_id in ("edp", "bundled", "private-rate"):
        [d] = one(line_id)
        amount = dec(rows[line_id]["lineItem/UnblendedCost"])
        assert (d["ChargeCategory"], d["BilledCost"], d["EffectiveCost"], d["ContractedCost"],
                d["ListCost"]) == ("Usage", amount, amount, amount, 0)
    assert [(r["ChargeCategory"], r["ChargeClass"]) for r in one("tax") + one("credit") + one("refund")] == [
        ("Tax", None), ("Credit", None), ("Credit", "Correction")]
    assert one("spot")[0]["PricingCategory"] == "Dynamic"
    assert one("on-demand")[0]["PricingCategory"] == "Standard"
    assert one("unmapped-service")[0]["ServiceCategory"] == "Other"
    assert one("spot")[0]["ServiceCategory"] == "Compute"
    assert one("on-demand")[0]["Tags"] == '{"project":"vision","team":"ml"}'
    assert one("tax")[0]["Tags"] is None


@pytest.mark.parametrize("shape", SHAPES)
def test_converted_commitment_rows_raise_no_data_quality_counts(tmp_path, con, shape):
    """The reader counts commitment purchases with EffectiveCost <> 0 and unused rows with 0 as provider
    errors: the conversion produces neither."""
    path = write_shape(shape, lines(), tmp_path)
    summary = summarize_file(con, str(path), *MONTH)
    assert summary.quality == [] and summary.warnings == ()


def test_lines_spanning_the_month_land_on_their_first_day(tmp_path, con):
    rows = lines()
    path = write_shape("legacy-csv", rows, tmp_path)
    monthly = {r["lineItem/LineItemDescription"] for r in rows
               if r["lineItem/UsageEndDate"] == "2026-12-01T00:00:00Z"}
    df = read_cur(con, path)
    days = {r["x_ChargeDate"] for r in df.iter_rows(named=True) if r["ChargeDescription"] in monthly}
    assert days == {MONTH[0]}
    later = read_cur(con, path, window=(date(2026, 11, 2), MONTH[1]))
    assert monthly.isdisjoint(later["ChargeDescription"]) and later.height > 0


def test_an_unparseable_part_of_an_amortized_sum_names_the_file_row_and_value(tmp_path, con):
    rows = lines()
    bad = next(i for i, r in enumerate(rows) if r["lineItem/LineItemType"] == "SavingsPlanRecurringFee")
    rows[bad]["savingsPlan/UsedCommitment"] = "n/a"
    path = write_shape("legacy-csv", rows, tmp_path)
    message = rf"cur.csv: row {bad + 1}: EffectiveCost .*cannot parse \"n/a\""
    with pytest.raises(NormalizationError, match=message):
        read_cur(con, path)
