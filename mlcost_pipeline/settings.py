"""Settings read from the environment (MLCOST_*), resolved when asked for, never at import time.

Credentials are never read here: each SDK finds its own through its standard chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ALL_SOURCES = ("aws", "gcp", "azure", "focus", "mlflow")
SAMPLE = "sample"


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    sources: tuple[str, ...]
    rules_path: Path | None
    reporting_currency: str
    restatement_days: int
    sample_dir: Path
    partitions_start: str

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse_path.parent

    @property
    def sample_mlflow_uri(self) -> str:
        return f"sqlite:///{(self.warehouse_dir / 'mlflow.db').resolve()}"

    def uses_sample(self, source: str) -> bool:
        return SAMPLE in self.sources

    def enabled(self, source: str) -> bool:
        return SAMPLE in self.sources or source in self.sources


def parse_sources(raw: str) -> tuple[str, ...]:
    names = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    unknown = [n for n in names if n not in ALL_SOURCES + (SAMPLE,)]
    if unknown:
        raise ValueError(
            f"MLCOST_SOURCES: unknown source(s) {unknown}; expected 'sample' or a comma list of {list(ALL_SOURCES)}"
        )
    return names or (SAMPLE,)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    warehouse = Path(env.get("MLCOST_WAREHOUSE_PATH", "warehouse/mlcost.duckdb"))
    rules = env.get("MLCOST_RULES")
    return Settings(
        warehouse_path=warehouse,
        sources=parse_sources(env.get("MLCOST_SOURCES", SAMPLE)),
        rules_path=Path(rules) if rules else None,
        reporting_currency=env.get("MLCOST_REPORTING_CURRENCY", "USD").upper(),
        restatement_days=int(env.get("MLCOST_RESTATEMENT_DAYS", "3")),
        sample_dir=Path(env.get("MLCOST_SAMPLE_DIR", str(warehouse.parent / "samples"))),
        partitions_start=env.get("MLCOST_PARTITIONS_START", "2025-01-01"),
    )
