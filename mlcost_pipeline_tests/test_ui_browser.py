"""The Dagster UI, checked in a real browser: `dagster dev -w workspace.yaml` on 127.0.0.1 with a temporary
DAGSTER_HOME, every asset, check, schedule and sensor loaded (GraphQL), the asset graph rendered by headless
Chromium (DOM and a screenshot), and every process it started stopped.

It needs Debian's chromium and takes about half a minute, so `make test` skips it; `make ui-test` (also run by
.ci/run) installs chromium when missing and runs it with MLCOST_UI_TEST=1. The screenshot is kept at
$MLCOST_UI_SCREENSHOT (default warehouse/ui-test/asset-graph.png) for a human to look at.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from mlcost_pipeline.definitions import build_definitions

pytestmark = pytest.mark.skipif(
    os.environ.get("MLCOST_UI_TEST") != "1", reason="the browser test runs with `make ui-test` (MLCOST_UI_TEST=1)"
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCREENSHOT = Path(os.environ.get("MLCOST_UI_SCREENSHOT") or REPO / "warehouse" / "ui-test" / "asset-graph.png")
STARTUP_SECONDS = 180
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--virtual-time-budget=20000",
]  # fmt: skip


def _default_signals() -> None:
    # A child of a non-interactive shell inherits SIGINT ignored, and Dagster maps SIGTERM to SIGINT's handler:
    # without this, `dagster dev` would ignore both (shared/notes/real-clients-offline.md §6b).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


class DagsterDev:
    """`dagster dev` in its own session and process group, so every process it spawns can be found and stopped."""

    def __init__(self, root: Path):
        home = root / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "dagster-dev.log"
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MLCOST_WAREHOUSE_PATH": str(root / "warehouse" / "mlcost.duckdb"),
            "MLCOST_SOURCES": "sample",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_default_signals, start_new_session=True,
            )  # fmt: skip
        self.pgid = self.proc.pid  # start_new_session: the leader's pid is the group id

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql", data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self) -> list[dict]:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited early:\n{self.log_tail()}"
            try:
                data = self.graphql(
                    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
                )
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return entries
            except OSError:
                pass  # not listening yet
            time.sleep(1)
        raise AssertionError(f"dagster dev did not load within {STARTUP_SECONDS} s:\n{self.log_tail()}")

    def stop(self) -> list[int]:
        """SIGTERM to dagster dev, which stops its webserver, daemon and code servers; KILL what is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while _group_members(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.5)
        survivors = _group_members(self.pgid)
        if survivors:
            os.killpg(self.pgid, signal.SIGKILL)
        return survivors


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run `make ui-test`, which installs Debian's chromium package")
    return found


def _browse(url: str, size: tuple[int, int], *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [_chromium(), *CHROMIUM_FLAGS, f"--window-size={size[0]},{size[1]}", f"--user-data-dir={profile}",
             *args, url],
            capture_output=True, text=True, timeout=120, start_new_session=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    server = DagsterDev(tmp_path_factory.mktemp("ui"))
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def expected():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks = {f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys}
    groups = Counter(graph.get(key).group_name for key in graph.get_all_asset_keys())
    return assets, checks, groups


def _graph_view(groups: Counter) -> tuple[str, tuple[int, int], float]:
    """The global lineage page with every group expanded, a viewport big enough for every node, and the device
    scale that brings the screenshot back to about 2400 px.

    The UI renders only the nodes inside the viewport and does not zoom out below the detail level here, so
    the viewport grows with the graph (about 260 CSS px per asset, the nodes being stacked in their groups).
    """
    expanded = ",".join(quote(f"global@global:{group}", safe="") for group in sorted(groups))
    side = max(2400, 260 * sum(groups.values()))
    return f"/asset-groups?expanded={expanded}", (side, side), round(2400 / side, 3)


def test_ui_loads_every_asset_and_check(dev, expected):
    assets, checks, _ = expected
    data = dev.graphql(
        "{ assetNodes { assetKey { path } isPartitioned "
        "assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }"
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) == assets
    loaded = {
        f"{key}:{check['name']}"
        for key, node in nodes.items()
        for check in (node["assetChecksOrError"].get("checks") or [])
    }
    assert loaded == checks
    assert {"core/focus_costs", "core/allocated_costs", "marts/cost_per_project_daily"} <= set(nodes)
    assert "core/allocated_costs:allocated_costs__conserves_effective_cost" in loaded
    assert nodes["core/focus_costs"]["isPartitioned"]


def test_ui_loads_the_schedule_and_the_snapshot_sensor(dev):
    data = dev.graphql(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { "
        "schedules { name cronSchedule executionTimezone scheduleState { status } } "
        "sensors { name sensorState { status } } } } } }"
    )
    [repo] = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s for s in repo["schedules"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert schedules["daily_restatement_schedule"]["cronSchedule"] == "0 6 * * *"
    assert schedules["daily_restatement_schedule"]["executionTimezone"] == "UTC"
    assert sensors["bi_snapshot_sensor"] == "RUNNING"


def test_ui_renders_the_asset_graph_in_chromium(dev, expected):
    assets, _, groups = expected
    page, size, scale = _graph_view(groups)
    zoom = f"--force-device-scale-factor={scale}"
    # The "Join the Dagster community" dialog covers the graph on a new DAGSTER_HOME.
    assert dev.graphql("mutation { setNuxSeen }") == {"setNuxSeen": True}
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = _browse(dev.base + page, size, zoom, f"--screenshot={SCREENSHOT}")
    assert shot.returncode == 0 and SCREENSHOT.exists(), shot.stderr[-2000:]
    png = SCREENSHOT.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    # Square and scaled down from the viewport; Chromium does not scale below 0.5, so a big graph stays larger.
    assert width == height and 2300 <= width <= max(2400, size[0] // 2), (width, height, size, scale)
    assert len(png) > 100_000  # a rendered graph; the same page blank is a few kB

    dom = _browse(dev.base + page, size, zoom, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Only nodes inside the viewport are in the DOM: every name there means the screenshot shows every asset.
    shown = {key for key in assets if f">{key.split('/')[-1]}<" in dom.stdout}
    assert shown == assets, f"not drawn in the viewport (see {SCREENSHOT}): {sorted(assets - shown)}"


def test_ui_stops_every_process_it_started(dev):
    survivors = dev.stop()
    assert survivors == [], f"still running after SIGTERM: {survivors}"
    assert dev.proc.returncode is not None and _group_members(dev.pgid) == []
