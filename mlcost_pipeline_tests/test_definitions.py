"""The code location loads, and its asset graph is what we reviewed (a snapshot: graph changes show in review)."""

import dagster as dg

from mlcost_pipeline.definitions import build_definitions


def _graph():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return defs, assets


def test_definitions_load_and_every_asset_is_described():
    defs, assets = _graph()
    assert defs.resolve_implicit_global_asset_job_def() is not None
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key.to_user_string()} has no description"
    assert {"core/focus_costs", "core/allocated_costs", "marts/cost_per_project_daily"} <= set(assets)


def test_definitions_asset_graph_snapshot(snapshot):
    _, assets = _graph()
    assert assets == snapshot


def test_definitions_money_checks_are_blocking():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    specs = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    for name in ("allocated_costs__conserves_effective_cost", "focus_costs__unique_line_id"):
        assert specs[name].blocking, name
    assert isinstance(defs, dg.Definitions)
