import os

# The sample MLflow store must never phone home, in tests or anywhere.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from hypothesis import settings  # noqa: E402

# The same examples on every run: a property test that fails in CI fails again on a developer's machine.
# (HYPOTHESIS_PROFILE=explore gives random examples, for hunting new failures.)
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
