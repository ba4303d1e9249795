import subprocess
import sys
from pathlib import Path

import pytest

from mlcost_pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_cli_materialize_refuses_an_end_before_the_start(capsys):
    assert main(["materialize", "--start", "2026-11-02", "--end", "2026-11-01"]) == 2
    assert capsys.readouterr().err == "mlcost: --end 2026-11-01 is before --start 2026-11-02\n"


def test_cli_materialize_refuses_a_malformed_date(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["materialize", "--start", "2026-13-01", "--end", "2026-11-01"])
    assert exit_.value.code == 2
    assert "not a YYYY-MM-DD date: '2026-13-01'" in capsys.readouterr().err


def test_cli_workspace_loads_in_dagster(tmp_path):
    """What `dagster dev -w workspace.yaml` loads: the code location validates without errors."""
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env={"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location mlcost_pipeline" in done.stderr + done.stdout
