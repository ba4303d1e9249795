"""Discovery's decisions on the documented layouts, through a dictionary-backed Store (discovery is pure).

What a user checks in the asset's log and metadata: an unfinished or incomplete run is skipped with a warning
naming it, a manifest's row counts and scope reach the files, non-cost exports are skipped with a reason, runs
chosen are shown as day ranges, and discovery lists the root once and reads nothing but manifests.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.sources.export_discovery import METADATA_CAP, ObjectInfo, discover
from mlcost_pipeline.sources.export_discovery_model import Folders, ancestors, is_manifest
from mlcost_pipeline_tests.test_export_discovery_layouts import everything
from mlcost_pipeline_tests.test_export_discovery_trees import AUG, SEP, SUB, Tree, csv_bytes, rows
from mlcost_pipeline_tests.test_export_discovery_trees_azure import (
    azure_create_new_with_export_time,
    azure_overwrite_and_types,
    azure_run,
)

ROOT = "mem://acme-billing/exports"
CLOCK = datetime(2026, 9, 21, tzinfo=UTC)
RUN5 = "daily-focus/20260901-20260930/202609050605/2c0ffee0-0005"
RUN4 = "daily-focus/20260901-20260930/202609040610/1c0ffee0-0004"


class DictStore:
    """A Store over a tree held in memory; it records what discovery asks of it."""

    def __init__(self, tree: Tree, root: str = ROOT):
        self.data = {f"{root}/{k}": v for k, v in tree.files.items()}
        self.info = {u: ObjectInfo(u, len(v), CLOCK + timedelta(minutes=tree.rank[u.removeprefix(root + "/")]),
                                   hashlib.md5(v).hexdigest()) for u, v in self.data.items()}  # fmt: skip
        self.lists: list[str] = []
        self.reads: list[str] = []

    def list(self, root: str) -> list[ObjectInfo]:
        self.lists.append(root)
        return [o for u, o in sorted(self.info.items()) if u == root or u.startswith(root.rstrip("/") + "/")]

    def read_bytes(self, uri: str) -> bytes:
        self.reads.append(uri)
        return self.data[uri]


def _rel(uri: str) -> str:
    return uri.removeprefix(ROOT + "/")


def test_discovery_lists_the_root_once_and_reads_only_manifests():
    tree = everything()
    store = DictStore(tree)
    found = discover(store, ROOT)
    assert store.lists == [ROOT]
    assert sorted(store.reads) == sorted(f"{ROOT}/{k}" for k in tree.files if is_manifest(k))
    assert {_rel(f.uri): f.days for f in found.files} == tree.expected


def test_a_run_folder_without_a_manifest_is_skipped_with_a_warning_naming_it():
    found = discover(DictStore(azure_create_new_with_export_time()), ROOT)
    unfinished = f"{ROOT}/daily-focus/20260901-20260930/202609060601/0c0ffee0-0006"
    assert [w for w in found.warnings() if unfinished in w] and len(found.warnings()) == 1
    assert not [f for f in found.files if f.uri.startswith(unfinished)]
    assert any(d.action == "run_skipped" and d.subject == unfinished for d in found.decisions)


def test_manifest_row_counts_run_ids_and_scope_reach_the_files():
    tree = azure_create_new_with_export_time()
    found = discover(DictStore(tree), ROOT)
    assert {_rel(f.uri): f.expected_rows for f in found.files} == {k: tree.rows[k] for k in tree.expected}
    assert {f.execution for f in found.files} == {"2c0ffee0-0005"}
    assert {f.scope for f in found.files} == {SUB.lower()}
    assert {f.manifest for f in found.files} == {f"{ROOT}/{RUN5}/manifest.json"}
    assert {f.export for f in found.files} == {f"azure:{SUB.lower()}/providers/microsoft.costmanagement/exports/"
                                                "daily-focus"}  # fmt: skip


def test_non_cost_exports_and_unlisted_parts_are_skipped_with_a_reason():
    found = discover(DictStore(azure_overwrite_and_types()), ROOT)
    skipped = {
        _rel(d.subject): d.reason for d in found.decisions if d.action in ("run_skipped", "file_skipped")
    }
    assert (
        skipped["prices/20260901-20260930/7e1f0000-run/manifest.json"] == "PriceSheet export: not cost data"
    )
    assert (
        skipped["actual/20260901-20260930/5e1f0000-run/part_2_0001.csv"]
        == "not listed by the manifest in its folder"
    )
    assert {f.dataset for f in found.files} == {ds.AZURE_ACTUAL, ds.AZURE_AMORTIZED}
    assert not found.warnings()


def test_a_run_missing_a_listed_blob_is_incomplete_and_the_previous_complete_run_counts():
    tree = azure_create_new_with_export_time()
    del tree.files[f"{RUN5}/part_1_0001.csv"]
    found = discover(DictStore(tree), ROOT)
    assert {_rel(f.uri): f.days for f in found.files} == {
        f"{RUN4}/part_{i}_0001.csv": tuple(SEP[:4]) for i in (0, 1)
    }
    assert any(f"{RUN5}/manifest.json" in w and "incomplete" in w for w in found.warnings())


def test_an_unreadable_manifest_leaves_its_run_unfinished():
    tree = azure_create_new_with_export_time()
    tree.files[f"{RUN5}/manifest.json"] = tree.files[f"{RUN5}/manifest.json"][:40]  # caught mid-write
    found = discover(DictStore(tree), ROOT)
    assert {_rel(f.uri) for f in found.files} == {f"{RUN4}/part_0_0001.csv", f"{RUN4}/part_1_0001.csv"}
    assert any("unreadable manifest" in w and RUN5 in w for w in found.warnings())
    assert any(RUN5 in w and "without a manifest" in w for w in found.warnings())


def test_chosen_runs_show_their_days_as_ranges_and_metadata_is_capped_with_warnings_first():
    tree = Tree()
    for month, days in (("08", AUG), ("09", SEP)):  # CreateNewReport: daily month-to-date runs, a folder each
        for n in range(1, 31):
            run = f"focus/2026{month}01-2026{month}{len(days)}/2026{month}{n:02d}0600/run-{month}-{n:02d}"
            # one day of rows is enough: only the decisions are checked here
            azure_run(tree, run, days[:1], "1.00", submitted=f"2026-{month}-{n:02d}T06:00:00Z", start=days[0],
                      end=days[n - 1])  # fmt: skip
    tree.put("focus/20260901-20260930/202610010600/run-31/part_0_0001.csv", csv_bytes(rows(SEP[:1], "1.0")))
    found = discover(DictStore(tree), ROOT)
    chosen = [line for line in found.lines() if " run_chosen " in line]
    assert len(chosen) == 2
    assert any("run-08-30/manifest.json [2026-08-01..2026-08-30]: " in line for line in chosen)
    assert any("run-09-30/manifest.json [2026-09-01..2026-09-30]: " in line for line in chosen)
    meta = found.metadata()
    json.dumps(meta)  # Dagster metadata must be JSON-able
    assert (meta["files"], meta["runs_found"], meta["runs_chosen"], meta["runs_skipped"]) == (2, 60, 2, 59)
    assert (
        len(meta["decisions"]) == METADATA_CAP
        and meta["decisions_left_off"] == len(found.decisions) - METADATA_CAP
    )
    assert meta["warnings"] == 1 and "run-31" in meta["decisions"][0] and "warning" in meta["decisions"][0]


def test_a_blob_listed_by_two_runs_counts_for_the_days_of_both():
    tree = Tree()  # an overwrite export whose earlier manifest still lists the blob the later run rewrote
    keys = azure_run(tree, "focus/20260901-20260930/run", SEP[:5], "1.00", submitted="2026-09-05T06:00:00Z",
                     start=SEP[0], end=SEP[4])  # fmt: skip
    later = json.loads(tree.files["focus/20260901-20260930/run/manifest.json"])
    later["runInfo"].update(submittedTime="2026-09-06T06:00:00Z", startDate="2026-09-03T00:00:00")
    tree.put("focus/20260901-20260930/run/again/manifest.json", json.dumps(later).encode())
    found = discover(DictStore(tree), ROOT)
    assert [(_rel(f.uri), f.days) for f in found.files] == [(keys[0], tuple(SEP[:5]))]


def test_cur_period_folders_without_a_manifest_keep_the_newest_assembly():
    tree = Tree()
    period = "legacy/acme/20260901-20261001"
    tree.put(f"{period}/asm-b/acme-1.csv.gz", b"x", rank=0)
    tree.put(f"{period}/asm-a/acme-1.csv.gz", b"x", rank=1)
    tree.put("legacy/other/20260901-20261001/other-1.csv.gz", b"x")  # overwrite: every file counts
    tree.put("legacy/other/20260901-20261001/other-2.csv.gz", b"x")
    found = discover(DictStore(tree), ROOT)
    assert sorted(_rel(f.uri) for f in found.files) == [
        f"{period}/asm-a/acme-1.csv.gz",
        "legacy/other/20260901-20261001/other-1.csv.gz",
        "legacy/other/20260901-20261001/other-2.csv.gz",
    ]
    assert all(f.days is None for f in found.files)
    assert len(found.warnings()) == 2 and all("no manifest" in w for w in found.warnings())


def test_a_data_exports_period_without_a_manifest_is_not_counted_and_says_so():
    tree = Tree()
    e = "cur2/acme"
    tree.put(f"{e}/data/BILLING_PERIOD=2026-09/acme-00001.csv.gz", b"x")
    tree.put(f"{e}/data/BILLING_PERIOD=2026-10/acme-00001.csv.gz", b"x")
    tree.put(f"{e}/metadata/BILLING_PERIOD=2026-09/acme-Manifest.json", json.dumps({
        "executionId": "e1", "exportArn": "arn", "dataFiles": [f"s3://b/{e}/data/BILLING_PERIOD=2026-09/"
                                                               "acme-00001.csv.gz"]}).encode())  # fmt: skip
    found = discover(DictStore(tree), ROOT)
    assert [_rel(f.uri) for f in found.files] == [f"{e}/data/BILLING_PERIOD=2026-09/acme-00001.csv.gz"]
    assert [w for w in found.warnings() if "BILLING_PERIOD=2026-10" in w and "no manifest" in w]


def test_a_single_file_named_counts_whole_wherever_it_sits():
    tree = azure_create_new_with_export_time()
    store = DictStore(tree)
    found = discover(store, f"{ROOT}/{RUN4}/part_0_0001.csv")
    assert [(_rel(f.uri), f.days, f.dataset) for f in found.files] == [
        (f"{RUN4}/part_0_0001.csv", None, None)
    ]
    assert store.reads == []
    assert date(2026, 9, 1) in SEP


_SEGMENT = st.sampled_from(["a", "b", "ab", "a-b", "a.b", "20260901-20260930", "x"])


@given(folders=st.lists(st.lists(_SEGMENT, min_size=1, max_size=4), max_size=8),
       uri=st.lists(_SEGMENT, min_size=1, max_size=6))  # fmt: skip
def test_the_folder_lookup_finds_the_nearest_folder_holding_a_uri(folders, uri):
    paths = ["s3://bkt/" + "/".join(f) for f in folders]
    target = "s3://bkt/" + "/".join(uri) + "/file.csv"
    nearest = next((f for f in ancestors(target) if f in set(paths)), None)
    assert Folders(paths).holding(target) == nearest


DOCUMENTED = Path(__file__).parent / "fixtures" / "export-layouts"


def test_microsofts_documented_manifests_are_read_as_written():
    current = (DOCUMENTED / "azure-manifest-2024-04-01.json").read_bytes()
    tree = (
        Tree()
    )  # each manifest beside the blob it names; the current example is a ReservationRecommendations run
    run = "folder/sample/00000000-0000-0000-0000-000000000000"
    tree.put(f"{run}/manifest.json", current)
    tree.put(f"{run}/part0.csv", b"not cost data")
    as_focus = current.replace(b'"ReservationRecommendations"', b'"FocusCost"').replace(b"/sample", b"/focus")
    tree.put(f"{run.replace('sample', 'focus')}/manifest.json", as_focus)
    tree.put(f"{run.replace('sample', 'focus')}/part0.csv", csv_bytes(rows(SEP[:1], "1.00")))
    older = "costs/20250301-20250331/5a1e0000-run"
    tree.put(f"{older}/_manifest.json", (DOCUMENTED / "azure-manifest-2021-01-01.json").read_bytes())
    tree.put(f"{older}/blobName.csv", csv_bytes(rows(SEP[:1], "1.00")))
    found = discover(DictStore(tree), ROOT)
    march = tuple(date(2025, 3, d) for d in range(1, 32))
    got = {_rel(f.uri): (f.dataset, f.days, f.expected_rows, f.execution, f.scope) for f in found.files}
    assert got == {
        "folder/focus/00000000-0000-0000-0000-000000000000/part0.csv": (
            ds.FOCUS, march[:21], 36, "bbac73f1-9a05-4de6-84ab-c72b568a03b4",
            "/providers/microsoft.billing/billingaccounts/1234567"),
        f"{older}/blobName.csv": (None, march, 136, "5a1e0000-run", None),
    }  # fmt: skip
    skipped = [d for d in found.decisions if d.action == "run_skipped"]
    assert [(_rel(d.subject), d.reason) for d in skipped] == [
        (f"{run}/manifest.json", "ReservationRecommendations export: not cost data")
    ]
    assert not found.warnings()


def test_without_submitted_time_the_export_time_folder_orders_runs_not_the_modification_time():
    tree = Tree()
    period = "focus/20260901-20260930"
    for stamp, rank in (("202609050605", 0), ("202609040610", 1)):  # the older run was copied last
        azure_run(tree, f"{period}/{stamp}/run-{stamp}", SEP[:1], "1.00", start=SEP[0], end=SEP[2])
        manifest = f"{period}/{stamp}/run-{stamp}/manifest.json"
        doc = json.loads(tree.files[manifest])
        del doc["runInfo"]["submittedTime"]
        tree.put(manifest, json.dumps(doc).encode(), rank)
    found = discover(DictStore(tree), ROOT)
    assert [(_rel(f.uri), f.days) for f in found.files] == [
        (f"{period}/202609050605/run-202609050605/part_0_0001.csv", tuple(SEP[:3]))
    ]
    assert any("export-time folder 2026-09-05 06:05" in line for line in found.lines())
