"""Export discovery through real clients: gs:// (gcsfs) and az:// (adlfs) stand-ins, S3 (moto) and its cache.

The same documented trees as the layout suite, served by the GCS and Blob stubs (test_focus_cloud_storage.py
explains how the SDKs find them) and by moto's S3 server; plus what MLCOST_FOCUS_PATH users rely on: a glob and a
comma list of roots, the cache reused until an object changes, a ZIP extracted once, a folder named without its
slash not matching its namesakes.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from mlcost_pipeline.sources.export_stores import resolve_exports
from mlcost_pipeline_tests.stubs.azure_blob import BlobStub, connection_string
from mlcost_pipeline_tests.stubs.gcp import UNIVERSE_DOMAIN, write_service_account
from mlcost_pipeline_tests.stubs.gcs import GcsStub
from mlcost_pipeline_tests.test_export_discovery_layouts import chosen_totals, s3, upload, write_local  # noqa: F401
from mlcost_pipeline_tests.test_export_discovery_trees import SEP, Tree, csv_bytes, rows
from mlcost_pipeline_tests.test_export_discovery_trees_aws import aws_create_new, cur_overwrite_zip
from mlcost_pipeline_tests.test_export_discovery_trees_azure import azure_create_new_with_export_time

BUCKET = "acme-billing"


def _tree() -> Tree:
    return azure_create_new_with_export_time().merge(aws_create_new())


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from adlfs import AzureBlobFileSystem
    from gcsfs.core import GCSFileSystem

    objects = {BUCKET: {f"exports/{k}": v for k, v in _tree().files.items()}}
    root = tmp_path_factory.mktemp("export_cloud")
    with GcsStub(objects) as gcs, BlobStub(objects) as blob, pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        mp.setenv(
            "GOOGLE_APPLICATION_CREDENTIALS", str(write_service_account(root / "sa.json", gcs.url + "/token"))
        )
        mp.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE_DOMAIN)
        mp.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(blob.url))
        yield {"gs": gcs, "az": blob}
        GCSFileSystem.clear_instance_cache()
        AzureBlobFileSystem.clear_instance_cache()


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_a_bucket_of_exports_counts_what_the_layouts_make_current(stores, tmp_path, scheme):
    tree, root = _tree(), f"{scheme}://{BUCKET}/exports"
    pairs, found = resolve_exports([root], tmp_path / "cache")
    assert {f.uri.removeprefix(root + "/"): f.days for f, _ in pairs} == tree.expected, found.lines()
    assert chosen_totals(pairs) == tree.totals
    assert [w for w in found.warnings() if "0c0ffee0-0006" in w]  # the unfinished run, named


def test_s3_files_are_fetched_once_and_again_when_they_change(s3, tmp_path):  # noqa: F811
    root = upload(s3, _tree(), "cache-reuse")
    pairs, _ = resolve_exports([root], tmp_path / "cache")
    stamps = {p: p.stat().st_mtime_ns for _, p in pairs}
    again, _ = resolve_exports([root], tmp_path / "cache")
    assert {p: p.stat().st_mtime_ns for _, p in again} == stamps  # same size and ETag: the cached copies
    f, path = next((f, p) for f, p in pairs if f.uri.endswith("exec2/acme-cur-00001.csv.gz"))
    restated = gzip.compress(csv_bytes(rows(SEP[:2], "1.05")))
    s3.put_object(Bucket="cache-reuse", Key=f.uri.removeprefix("s3://cache-reuse/"), Body=restated)
    third, _ = resolve_exports([root], tmp_path / "cache")
    assert dict((str(f.uri), p.read_bytes()) for f, p in third)[f.uri] == restated
    assert all(p.stat().st_mtime_ns == stamps[p] for _, p in third if p != path)


def test_a_zip_report_is_extracted_once_to_the_cache(s3, tmp_path):  # noqa: F811
    tree = cur_overwrite_zip()
    root = upload(s3, tree, "zip-once")
    pairs, _ = resolve_exports([root], tmp_path / "cache")
    assert {p.name for _, p in pairs} == {"acme-zip-1.csv", "acme-zip-2.csv"}
    assert chosen_totals(pairs) == tree.totals
    stamps = {p: p.stat().st_mtime_ns for _, p in pairs}
    assert {p: p.stat().st_mtime_ns for _, p in resolve_exports([root], tmp_path / "cache")[0]} == stamps


def test_a_zip_that_holds_more_than_one_file_fails_naming_it(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", "x\n1\n")
        zf.writestr("b.csv", "x\n2\n")
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "report-1.csv.zip").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match=r"report-1\.csv\.zip: a ZIP export must hold one data file"):
        resolve_exports([str(tmp_path / "exports")], tmp_path / "cache")


def test_an_s3_folder_named_without_its_slash_is_not_its_namesakes(s3, tmp_path):  # noqa: F811
    tree = Tree()
    tree.put("focus/2026-09-01.csv", csv_bytes(rows(SEP[:1], "1.00")))
    tree.put("focus-old/2026-09-01.csv", csv_bytes(rows(SEP[:1], "2.00")))
    upload(s3, tree, "namesakes")
    pairs, _ = resolve_exports(["s3://namesakes/exports/focus"], tmp_path / "cache")
    assert [f.uri for f, _ in pairs] == ["s3://namesakes/exports/focus/2026-09-01.csv"]


def test_a_glob_narrows_what_counts_and_a_comma_list_adds_roots(tmp_path):
    root = write_local(azure_create_new_with_export_time(), tmp_path / "exports")
    (tmp_path / "single.csv").write_bytes(csv_bytes(rows(SEP[:1], "1.00")))
    pairs, _ = resolve_exports(
        [f"{root}/**/part_0_0001.csv", str(tmp_path / "single.csv")], tmp_path / "cache"
    )
    # the glob matches every run's first part, but only the current run's counts: a glob never revives a stale run
    assert [(f.uri.removeprefix(str(tmp_path) + "/"), f.days) for f, _ in pairs] == [
        ("exports/daily-focus/20260901-20260930/202609050605/2c0ffee0-0005/part_0_0001.csv", tuple(SEP[:5])),
        ("single.csv", None),
    ]
