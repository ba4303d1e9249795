"""Every MLCOST_* setting is known and documented; an unknown one (a typo) is reported once, naming the closest."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlcost_pipeline.settings import KNOWN_SETTINGS, load_settings, unknown_settings

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"MLCOST_[A-Z0-9_]*[A-Z0-9]")
# Files that mention misspelt names on purpose: the tests of the misspelling warning.
TYPO_TESTS = "test_settings_"


def _names(paths) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        for name in NAME.findall(path.read_text(errors="replace")):
            found.setdefault(name, []).append(str(path.relative_to(REPO)))
    return found


def test_known_settings_are_exactly_the_documented_ones():
    documented = _names([REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    assert len(KNOWN_SETTINGS) == len(set(KNOWN_SETTINGS))
    assert sorted(set(KNOWN_SETTINGS) - set(documented)) == [], (
        "known but documented nowhere in README.md or docs/"
    )
    assert sorted(set(documented) - set(KNOWN_SETTINGS)) == [], (
        "documented but missing from settings.KNOWN_SETTINGS"
    )


def test_the_code_reads_no_setting_that_is_not_known():
    sources = [
        *REPO.glob("mlcost_pipeline/**/*.py"),
        *REPO.glob("bench/**/*.py"),
        *(p for p in REPO.glob("mlcost_pipeline_tests/**/*.py") if not p.name.startswith(TYPO_TESTS)),
        REPO / "Makefile",
        REPO / ".ci" / "run",
    ]
    used = _names([p for p in sources if p.is_file()])
    assert {n: files for n, files in used.items() if n not in KNOWN_SETTINGS} == {}
    assert "MLCOST_WAREHOUSE_PATH" in used and "MLCOST_FAULT_PAUSE_IN_WRITE" in used  # the scan does see them


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("MLCOST_WAREHOUSE", "MLCOST_WAREHOUSE_PATH"),
        ("MLCOST_SOURCE", "MLCOST_SOURCES"),
        ("MLCOST_FOCUS_PATHS", "MLCOST_FOCUS_PATH"),
        ("mlcost_sources", "MLCOST_SOURCES"),
        ("MLCOST_REPORTING_CURENCY", "MLCOST_REPORTING_CURRENCY"),
        ("MLCOST_XYZZY", None),
    ],
)
def test_an_unknown_setting_is_reported_with_the_closest_known_name(name, closest):
    env = {name: "x", "MLCOST_SOURCES": "focus", "MLFLOW_TRACKING_URI": "http://h", "PATH": "/bin"}
    assert unknown_settings(env) == {name: closest}


def _stderr_of(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MLFLOW_DISABLE_TELEMETRY": "true", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_a_process_reports_a_misspelt_setting_once_however_often_it_reads_settings():
    code = (
        "from mlcost_pipeline.settings import load_settings, warn_unknown_settings\n"
        "load_settings(); load_settings(); warn_unknown_settings()\n"
    )
    lines = _stderr_of(code, MLCOST_WAREHOUSE="warehouse/x.duckdb").splitlines()
    assert lines == [
        "MLCOST_WAREHOUSE is not a setting of mlcost-pipeline and is ignored; did you mean MLCOST_WAREHOUSE_PATH?"
    ]


def test_the_cli_prints_the_warning_once(tmp_path):
    code = "import sys; from mlcost_pipeline.cli import main; sys.exit(main(['validate-rules']))"
    stderr = _stderr_of(code, MLCOST_SOURCE="focus")
    assert stderr.count("MLCOST_SOURCE ") == 1
    assert "mlcost: warning: MLCOST_SOURCE is not a setting of mlcost-pipeline and is ignored; did you mean " \
           "MLCOST_SOURCES?" in stderr  # fmt: skip


def test_loading_the_code_location_logs_the_warning_once(tmp_path):
    # What `dagster dev` does: import the definitions module (settings are read there and in defs/partitions.py).
    stderr = _stderr_of(
        "import mlcost_pipeline.definitions",
        MLCOST_BUDGET_WEBHOOK="https://hooks.example/x",
        MLCOST_WAREHOUSE_PATH=str(tmp_path / "w.duckdb"),
        DAGSTER_HOME=str(tmp_path),
    )
    assert stderr.count("MLCOST_BUDGET_WEBHOOK ") == 1, stderr
    assert "did you mean MLCOST_BUDGET_WEBHOOK_URL?" in stderr
    assert "hooks.example" not in stderr  # a misspelt secret's value is never printed


def test_a_malformed_partitions_start_names_the_setting():
    with pytest.raises(ValueError, match=r"MLCOST_PARTITIONS_START: not a YYYY-MM-DD date: '2025-13-01'"):
        load_settings({"MLCOST_PARTITIONS_START": "2025-13-01"})
    assert load_settings({}).first_partition.isoformat() == "2025-01-01"
