"""FOCUS exports on gs:// and az://: gcsfs and adlfs (azure-storage-blob) against local stand-ins on 127.0.0.1.

gcsfs finds the GCS stub through STORAGE_EMULATOR_HOST and its credentials through Google ADC (a service-account
key file in GOOGLE_APPLICATION_CREDENTIALS); adlfs finds the Blob stub and its Shared Key through
AZURE_STORAGE_CONNECTION_STRING (an Azurite-style BlobEndpoint). The objects are the FOCUS specification's
published examples (fixtures/focus-spec-v1.2-examples, byte for byte) and the OCI-style sample export; every
answer is compared with the same files read from the local disk.
"""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.sources.export_stores import resolve_exports
from mlcost_pipeline.sources.sample.focus_export import focus_csv
from mlcost_pipeline_tests.connector_helpers import day_snapshot, live_settings, materialize_day
from mlcost_pipeline_tests.stubs import azure_blob
from mlcost_pipeline_tests.stubs.azure_blob import BlobStub, connection_string
from mlcost_pipeline_tests.stubs.gcp import UNIVERSE_DOMAIN, write_service_account
from mlcost_pipeline_tests.stubs.gcs import GcsStub

SPEC = Path(__file__).parent / "fixtures" / "focus-spec-v1.2-examples"
BROKEN = {"commitment_discount_purchase_scenario_2.csv", "commitment_discount_purchase_scenario_3.csv"}  # hour 30
SPEC_FILES = sorted(p for p in SPEC.glob("*.csv") if p.name not in BROKEN)
SPEC_DEFAULTS = {"BillingCurrency": "USD", "BillingAccountId": "spec-example", "ProviderName": "FOCUS spec",
                 "ServiceName": "Example Service"}  # fmt: skip  (the examples carry only the columns they are about)
SPEC_WINDOW = (date(2023, 1, 1), date(2023, 2, 1))
DAY = date(2026, 10, 1)
BUCKET = "acme-focus-exports"


def resolve_files(specs: list[str], cache_dir) -> list:
    """The local copies of every file that counts under the specs (discovery decides), sorted."""
    return sorted({path for _, path in resolve_exports(specs, cache_dir)[0]})


def _objects() -> dict[str, dict[str, bytes]]:
    files = {f"focus/spec/{p.name}": p.read_bytes() for p in SPEC_FILES}
    files["focus/spec/README.md"] = b"not an export"  # listed by the store, skipped by name
    files[f"focus/oci/{DAY}.csv"] = focus_csv(DAY)
    return {BUCKET: files}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Both stand-ins, with each SDK's environment pointing at them: {"gs": stub, "az": stub}."""
    from adlfs import AzureBlobFileSystem
    from gcsfs.core import GCSFileSystem

    root = tmp_path_factory.mktemp("cloud_storage")
    with GcsStub(_objects()) as gcs, BlobStub(_objects()) as blob, pytest.MonkeyPatch.context() as mp:
        key = write_service_account(root / "sa.json", gcs.url + "/token")
        mp.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        mp.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE_DOMAIN)
        mp.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(blob.url))
        yield {"gs": gcs, "az": blob}
        # fsspec keeps one filesystem per process and options: forget the ones bound to these stubs' settings.
        GCSFileSystem.clear_instance_cache()
        AzureBlobFileSystem.clear_instance_cache()


def _frame(paths: list[Path]) -> pl.DataFrame:
    from datetime import datetime

    with duckdb.connect() as con:
        frame = read_focus_export(con, [str(p) for p in paths], *SPEC_WINDOW, datetime(2026, 11, 3),
                                  defaults=SPEC_DEFAULTS)  # fmt: skip
    return frame.sort("x_LineId")


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_a_remote_folder_gives_the_same_files_and_charges_as_the_local_files(stores, tmp_path, scheme):
    files = resolve_files([f"{scheme}://{BUCKET}/focus/spec/"], tmp_path / "cache")
    assert sorted(p.name for p in files) == [p.name for p in SPEC_FILES]  # README.md skipped, listing paged
    for path in files:
        assert path.read_bytes() == (SPEC / path.name).read_bytes()
        assert path.is_relative_to(tmp_path / "cache" / scheme / BUCKET / "focus" / "spec")
    remote, local = _frame(files), _frame(SPEC_FILES)
    assert remote.height == local.height > 0
    assert remote.equals(local)  # same rows, line ids, export versions (file hashes) and money to the last digit
    lists = [q for _, path, q in stores[scheme].requests if path.endswith(BUCKET) or path.endswith(f"{BUCKET}/o")]
    assert any(q.get("pageToken") or q.get("marker") for q in lists)  # the store paged its listing, all was read


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_a_glob_selects_only_matching_objects(stores, tmp_path, scheme):
    files = resolve_files([f"{scheme}://{BUCKET}/focus/spec/commitment_discount_usage_*.csv"], tmp_path / "c")
    assert [p.name for p in files] == [f"commitment_discount_usage_scenario_{n}.csv" for n in (1, 2, 3, 4)]


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_the_cache_is_reused_until_the_object_changes(stores, tmp_path, scheme):
    stub, name = stores[scheme], "commitment_discount_usage_scenario_1.csv"
    spec = f"{scheme}://{BUCKET}/focus/spec/{name}"

    def downloads() -> int:
        return sum(1 for m, path, q in stub.requests if m == "GET" and path.endswith(name)
                   and (scheme == "az" or path.startswith("/download/")))  # fmt: skip (not metadata reads)

    resolve_files([spec], tmp_path)
    before = downloads()
    [again] = resolve_files([spec], tmp_path)
    assert downloads() == before  # same size and ETag: the cached copy is used
    objects = stub.objects if scheme == "gs" else stub.containers
    original = objects[BUCKET][f"focus/spec/{name}"]
    changed = original.replace(b",1.00,1.00,Hour", b",1.25,1.00,Hour")  # EffectiveCost restated, same size
    assert changed != original and len(changed) == len(original)
    objects[BUCKET][f"focus/spec/{name}"] = changed
    try:
        [path] = resolve_files([spec], tmp_path)
    finally:
        objects[BUCKET][f"focus/spec/{name}"] = original
    assert downloads() == before + 1 and path.read_bytes() == changed


def test_gcs_is_read_with_the_adc_service_account_not_anonymously(stores, tmp_path):
    # gcsfs would fall back to anonymous access without credentials; the stub refuses that (401), so reading at
    # all proves a token was sent. Here: it is the service account's from GOOGLE_APPLICATION_CREDENTIALS.
    stores["gs"].authorizations.clear()
    assert resolve_files([f"gs://{BUCKET}/focus/oci/"], tmp_path)
    tokens = [a.removeprefix("Bearer ") for a in stores["gs"].authorizations if a.startswith("Bearer ")]
    assert tokens
    claims = json.loads(base64.urlsafe_b64decode(tokens[0].split(".")[1] + "=="))
    assert claims["iss"] == "mlcost@acme-billing.iam.gserviceaccount.com"


def test_a_wrong_azure_account_key_fails_naming_the_path_and_the_stores_error(stores, tmp_path, monkeypatch):
    from adlfs import AzureBlobFileSystem

    wrong = base64.b64encode(b"not-the-account-key").decode()
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(stores["az"].url, key=wrong))
    AzureBlobFileSystem.clear_instance_cache()
    try:
        with pytest.raises(RuntimeError, match=rf"focus_export: MLCOST_FOCUS_PATH 'az://{BUCKET}/focus/spec/': "
                                               r"ClientAuthenticationError: (?s:.*)AuthenticationFailed") as failure:
            resolve_files([f"az://{BUCKET}/focus/spec/"], tmp_path)
        assert azure_blob.KEY not in str(failure.value) and wrong not in str(failure.value)
        assert not list(tmp_path.rglob("*.csv"))
    finally:
        AzureBlobFileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("focus_local")
    (root / "exports").mkdir()
    (root / "exports" / f"{DAY}.csv").write_bytes(focus_csv(DAY))
    settings = live_settings(root, "focus", MLCOST_FOCUS_PATH=str(root / "exports"))
    assert materialize_day(settings, "raw.focus_export_files", DAY).success
    return day_snapshot(settings, "raw.focus_export_files", DAY)[1]


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_a_pipeline_run_on_a_bucket_lands_what_the_local_run_lands(stores, local_run, tmp_path, scheme):
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=f"{scheme}://{BUCKET}/focus/oci/")
    result = materialize_day(settings, "raw.focus_export_files", DAY)
    assert result.success
    _, rows = day_snapshot(settings, "raw.focus_export_files", DAY)
    assert rows == local_run and len(rows) > 0  # core.focus_costs, every column but x_IngestedAt
