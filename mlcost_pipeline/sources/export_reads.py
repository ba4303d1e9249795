"""Which rows of which export files each UTC day counts: dataset, Azure actual/amortized pairing, checks, quality.

Source: the files discovery chose (export_discovery: a file, its dataset, the days its run won) and their local
copies. Grain of the answer: (UTC charge day, file) for every file holding a charge of that day, with what the
reader must know to read it again the same way (dataset, paired); plus the rows loaded despite a tolerated problem
(per day, provider and column, with the first such row) and the warnings. Every chosen file is read whole with the
checks core.focus_costs uses, so a broken file fails the window before anything lands (a Parquet file whose
statistics put it outside the window is not opened).

Azure pairing (ConvertTo-FinOpsSchema): on a day an ActualCost and an AmortizedCost export of the same scope both
count, the actual one adds only its commitment purchases and refunds; every other actual row is in the amortized
one already. The scope is the export's (from its manifest), else the folder holding the file (portal downloads of
one scope sit side by side).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export import STRICT, ExportRead, QualityCount, describe, summarize_file
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label
from mlcost_pipeline.warehouse.lake import land_file

SOURCE = "focus_export"


@dataclass(frozen=True)
class ChosenFile:
    """A file discovery chose, with its local copy (export_discovery.ExportFile's fields that reading needs)."""

    path: Path
    uri: str = ""
    dataset: str | None = None
    export: str = "files"
    execution: str | None = None
    days: tuple[date, ...] | None = None
    expected_rows: int | None = None
    scope: str | None = None

    @classmethod
    def of(cls, export_file, path: Path) -> ChosenFile:
        return cls(path=path, uri=export_file.uri, dataset=export_file.dataset, export=export_file.export,
                   execution=export_file.execution, days=export_file.days, expected_rows=export_file.expected_rows,
                   scope=export_file.scope)  # fmt: skip


@dataclass(frozen=True)
class FileDay:
    """raw.focus_export_files' row: one file's charges of one day, and how to read them again."""

    day: date
    path: Path
    dataset: str  # an export_datasets kind
    version: str  # what the reader read: focus-<version> or the dataset
    export: str
    execution: str | None
    uri: str
    paired: bool  # Azure actual cost read beside its amortized export on this day
    sha256: str | None = None  # the file's content hash, when it was landed in the lake (`path` is then the copy)


@dataclass
class ExportLanding:
    file_days: list[FileDay] = field(default_factory=list)
    quality: list[tuple[str, QualityCount]] = field(default_factory=list)  # (where the file came from, count)
    warnings: list[str] = field(default_factory=list)
    discovery: dict | None = None  # export_discovery's decisions (JSON-able), for the asset's metadata


def _dataset(version: str) -> str:
    return ds.FOCUS if version.startswith("focus-") else version


def _parquet_day_ranges(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, tuple[date, date]]:
    """Parquet FOCUS files -> (first, last) UTC day of ChargePeriodStart from the row-group statistics (footers).

    The statistics hold the stored values: a timestamp (UTC) or an ISO text that may carry an offset, so a day
    is only trusted give or take one; a file without usable statistics is left out (and read instead).
    """
    parquet = [str(p) for p in files if str(p).lower().endswith((".parquet", ".parq"))]
    if not parquet:
        return {}
    rows = con.execute(
        "SELECT file_name, bool_and(stats_min IS NOT NULL AND stats_max IS NOT NULL), "
        "min(TRY_CAST(left(stats_min, 10) AS DATE)), max(TRY_CAST(left(stats_max, 10) AS DATE)), "
        "count(*) FILTER (WHERE TRY_CAST(left(stats_min, 10) AS DATE) IS NULL "
        "                  OR TRY_CAST(left(stats_max, 10) AS DATE) IS NULL) "
        "FROM parquet_metadata($files) WHERE lower(path_in_schema) = 'chargeperiodstart' GROUP BY ALL",
        {"files": parquet},
    ).fetchall()
    return {name: (lo, hi) for name, complete, lo, hi, unparsed in rows if complete and not unparsed}


def _in_window(days: tuple[date, ...] | None, start: date, end: date) -> tuple[date, ...] | None:
    return None if days is None else tuple(d for d in days if start <= d < end)


def _paired_days(files: list[ChosenFile], datasets: list[str], start: date, end: date) -> list[tuple[date, ...]]:
    """For each file: the window's days on which it is an actual export read beside an amortized one."""
    window = tuple(start + timedelta(days=i) for i in range((end - start).days))
    amortized: dict[str, set[date]] = {}
    for f, kind in zip(files, datasets, strict=True):
        if kind == ds.AZURE_AMORTIZED:
            amortized.setdefault(f.scope or str(f.path.parent), set()).update(f.days or window)
    out = []
    for f, kind in zip(files, datasets, strict=True):
        partner = amortized.get(f.scope or str(f.path.parent), set()) if kind == ds.AZURE_ACTUAL else set()
        out.append(tuple(sorted(partner.intersection(f.days or window).intersection(window))))
    return out


def files_by_day(
    files: Sequence[ChosenFile | Path], start: date, end: date, log: Callable[[str], None] | None = None,
    strict: frozenset[str] = STRICT, lake_dir: Path | None = None,
) -> ExportLanding:
    """Check the chosen files and map the window's days to them (see the module docstring).

    With `lake_dir`, every file that holds a charge of the window is landed there (warehouse/lake.py) and its rows
    name the lake copy; files that hold none are not copied.
    """
    chosen = [f if isinstance(f, ChosenFile) else ChosenFile(Path(f), uri=str(f)) for f in files]
    landing = ExportLanding()
    con = duckdb.connect()
    try:
        ranges = _parquet_day_ranges(con, [f.path for f in chosen if f.dataset in (None, ds.FOCUS)])
        keep = []
        for f in chosen:
            known = ranges.get(str(f.path))
            days = _in_window(f.days, start, end)
            if days == () or (known and (known[1] < start - timedelta(days=1) or known[0] > end)):
                continue  # this file's run won no day of the window, or its statistics say it holds none
            keep.append(f)
        try:
            datasets = []
            for f in keep:  # a bare file: its dataset from its columns (an Azure one also from its rows), once
                described = None if f.dataset else describe(con, ExportRead(str(f.path)), strict=strict)
                datasets.append(f.dataset or _dataset(described.version))
                landing.warnings += described.warnings if described else ()
            paired = _paired_days(keep, datasets, start, end)
            for f, kind, on in zip(keep, datasets, paired, strict=True):
                read = ExportRead(str(f.path), dataset=kind, days=f.days, expected_rows=f.expected_rows,
                                  options=ConvertOptions(paired_days=on))  # fmt: skip
                summary = summarize_file(con, read, start, end, strict)
                landing.warnings += summary.warnings
                landing.quality += [(f.uri or str(f.path), q) for q in summary.quality]
                found = sorted({day for day, *_ in summary.days})
                path, sha = land_file(f.path, lake_dir) if lake_dir and found else (f.path, None)
                landing.file_days += [FileDay(day, path, _dataset(summary.dataset), summary.dataset, f.export,
                                              f.execution, f.uri, day in on, sha) for day in found]  # fmt: skip
                if log and found:
                    log(f"{SOURCE}: {f.uri or f.path} ({summary.dataset}) has {sum(r[-1] for r in summary.days)} "
                        f"charge(s) on {len(found)} day(s) of the window")
        except (NormalizationError, duckdb.Error) as exc:
            raise SourceDataError(f"{SOURCE} {window_label(start, end)}: {exc}") from exc
    finally:
        con.close()
    landing.file_days.sort(key=lambda r: (r.day, str(r.path)))
    return landing
