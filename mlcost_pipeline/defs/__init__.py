"""The Dagster layer: thin assets, checks and resources over the pure modules."""

import warnings

# Dagster is pinned exactly, so the beta APIs we use (single-run backfills, code references) cannot shift under
# us; their warnings would only bury the pipeline's own output.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
