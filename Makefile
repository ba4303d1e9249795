# Two commands on a fresh machine (python3 and pip only): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: demo test lint ui ui-test bench install clean

$(BIN)/mlcost: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	@mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	@touch $(BIN)/mlcost

install: $(BIN)/mlcost

demo: $(BIN)/mlcost
	$(BIN)/mlcost demo

# Two workers (this machine has 2 cores), whole test files per worker so module fixtures are built once.
test: $(BIN)/mlcost
	$(BIN)/ruff check mlcost_pipeline mlcost_pipeline_tests
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(BIN)/mlcost
	$(BIN)/ruff check mlcost_pipeline mlcost_pipeline_tests

# The Dagster UI on 127.0.0.1:3000 (`dg dev -w workspace.yaml` works too).
ui: $(BIN)/mlcost
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The Dagster UI in a real browser (mlcost_pipeline_tests/test_ui_browser.py): Debian's chromium is installed the
# first time (apt-get, as root or through sudo); the asset-graph screenshot lands in warehouse/ui-test/.
ui-test: $(BIN)/mlcost
	@command -v chromium >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
	MLCOST_UI_TEST=1 $(BIN)/python -m pytest mlcost_pipeline_tests/test_ui_browser.py

# Throughput and memory on the real code path, with a pandas baseline in the same process (bench/run.py).
# BENCH_ROWS=10000000 make bench for the large run; results in bench/results/latest.{json,md}.
bench: $(BIN)/mlcost
	$(BIN)/python -m bench.run

clean:
	rm -rf warehouse .dagster_home
