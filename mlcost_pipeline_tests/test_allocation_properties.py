"""Property tests: for random charges, pools, runs and drivers, allocation conserves every charge exactly, gives the
same output twice, and never gives a positive charge a negative piece (nor a negative charge a positive one)."""

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcost_pipeline.allocation.engine import allocate_window
from mlcost_pipeline.allocation.rules import LoadedRules, Rules
from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations
from mlcost_pipeline_tests.allocation_fixtures import D1, D3, at, charge, run, warehouse

PROJECTS = ["p1", "p2", "p3"]
SERVICES = ["A", "B", "C"]

amounts = st.builds(
    lambda units, scale: Decimal(f"{units}E-{scale}"),
    st.integers(-(10**15), 10**15) | st.integers(-3, 3),
    st.integers(0, 12),
) | st.sampled_from([10**36 - 1, -(10**36) + 1, 10**30]).map(lambda u: Decimal(f"{u}E-12"))
# ~1e24 per charge: 25 of them converted at rate 0.5 still fit DECIMAL(38,12) (|x| < 1e26), the table's type


@st.composite
def charges(draw):
    out = []
    for _ in range(draw(st.integers(1, 25))):
        tags = {}
        if draw(st.booleans()):
            tags["project"] = draw(st.sampled_from(PROJECTS))
        if draw(st.booleans()):
            tags["cluster"] = "gpu"
        eur = draw(st.booleans())
        out.append(charge(
            draw(st.sampled_from([D1, D1 + timedelta(days=1)])), str(draw(amounts)),
            ServiceName=draw(st.sampled_from(SERVICES)), tags=tags or None,
            ChargeCategory=draw(st.sampled_from(["Usage", "Tax", "Credit"])),
            BillingCurrency="EUR" if eur else "USD",
            x_CurrencyConversionRate=draw(st.decimals("0.5", "2", places=4)) if eur else None,
            SkuId="GPU", ConsumedQuantity=draw(st.sampled_from([None, Decimal(0), Decimal(3600), Decimal(7)])),
        ))  # fmt: skip
    return out


@st.composite
def pools(draw):
    out = []
    for i in range(draw(st.integers(0, 4))):
        select = draw(st.sampled_from([{"services": ["A"]}, {"services": ["B", "C"]}, {"tags": {"cluster": "gpu"}},
                                       {"charge_categories": ["Tax"]}, {"services": ["A"], "unowned_only": True}]))
        method = draw(st.sampled_from(["even", "fixed", "proportional_cost", "proportional_usage"]))
        targets = draw(st.lists(st.sampled_from(PROJECTS), min_size=1, max_size=3, unique=True))
        pool = {"id": f"pool{i}", "select": select, "method": method}
        if method == "even":
            pool["targets"] = targets
        elif method == "fixed":
            cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(targets) - 1, max_size=len(targets) - 1)))
            weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
            pool["targets"] = [{"project": t, "weight": w} for t, w in zip(targets, weights, strict=True)]
        elif method == "proportional_cost":
            pool |= {"scope": draw(st.sampled_from(["all", "provider"])),
                     "fallback": draw(st.sampled_from(["even", "unallocated"])), "targets": targets}
        else:
            pool |= {"driver": draw(st.sampled_from(["gpu_hours", "table"])),
                     "fallback": draw(st.sampled_from(["even", "idle", "unallocated"])), "targets": targets}
            if pool["driver"] == "gpu_hours":
                pool["grain"] = draw(st.sampled_from(["project", "model", "run"]))
                capacity = draw(st.sampled_from([None, {"per_day": 5}, {"from_consumed_quantity": {"per_unit": "1/3600"}}]))
                if capacity:
                    pool |= {"capacity": capacity, "idle": draw(st.sampled_from(["keep", "share"]))}
        out.append(pool)
    return out


@st.composite
def runs(draw):
    return [run(f"r{i}", at(D1, draw(st.integers(0, 40))), draw(st.sampled_from([0.5, 1, 7.25, 30])),
                draw(st.sampled_from([None, 0, 1, 8])), project=draw(st.sampled_from(PROJECTS + ["P 1"])),
                model=draw(st.sampled_from(["m1", "m2"])))
            for i in range(draw(st.integers(0, 5)))]  # fmt: skip


def _loaded(pool_list: list[dict], rows: list[tuple]) -> LoadedRules:
    rules = Rules.model_validate({
        "dimensions": {"project": {"tag_keys": ["project"]}, "model": {"tag_keys": ["model"]}},
        "pools": pool_list, "drivers": {"table": {"csv": "unused.csv"}},
    })  # fmt: skip
    return LoadedRules(rules=rules, source="<hypothesis>", sha256="0" * 64, driver_rows={"table": rows})


driver_rows = st.lists(st.tuples(st.sampled_from([None, D1]), st.sampled_from(PROJECTS), st.none(),
                                 st.sampled_from([Decimal(0), Decimal("2.5"), Decimal(1000)])), max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charges(), pools(), runs(), driver_rows)
def test_allocation_conserves_is_deterministic_and_keeps_signs(charge_rows, pool_list, run_rows, table_rows):
    loaded = _loaded(pool_list, table_rows)
    con = warehouse(charge_rows, run_rows)
    allocate_window(con, loaded, D1, D3, "USD")
    assert conservation_violations(con, D1, D3) == []
    assert split_violations(con, D1, D3) == (0, [])  # pieces = charge, ratios = 1, no negative piece of a positive
    wrong_sign = con.execute(
        "SELECT count(*) FROM core.allocated_costs a JOIN core.focus_costs f USING (x_LineId) "
        "WHERE sign(a.amount) * sign(f.EffectiveCost) < 0 OR sign(a.amount_reporting) * sign(f.EffectiveCost) < 0 "
        "OR a.ratio < 0"
    ).fetchall()[0][0]
    assert wrong_sign == 0
    first = con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall()
    allocate_window(con, loaded, D1, D3, "USD")
    assert con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall() == first
    con.close()
