"""Export trees for the discovery tests: what a tree is, and the data files in it (no tests here).

Every data file is a small FOCUS CSV (rows of the sample OCI generator, `focus_csv`), its money scaled by a
factor per run, so a stale run's file adds different amounts than the current one and counting it shows. Each
tree says which files must count for which days (`expected`) and what BilledCost each day must then add up to
(`totals`), computed here from the bytes of the runs the layout makes current, with csv and Decimal. The trees
themselves: test_export_discovery_trees_azure.py and test_export_discovery_trees_aws.py.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from mlcost_pipeline.sources.sample.focus_export import focus_csv

BUCKET = "acme-billing"  # the bucket the AWS manifests name (the S3 tests upload to a bucket of their own)
SEP = [date(2026, 9, d) for d in range(1, 31)]
AUG = [date(2026, 8, d) for d in range(1, 32)]
SUB = "/subscriptions/00000000-0000-0000-0000-00000000acme"
_ROWS_PER_DAY = 10


@dataclass
class Tree:
    files: dict[str, bytes] = field(default_factory=dict)  # key under the root -> bytes
    rank: dict[str, int] = field(default_factory=dict)  # write order where it decides (modification time)
    expected: dict[str, tuple[date, ...] | None] = field(default_factory=dict)  # key -> days it counts for
    totals: dict[date, Decimal] = field(default_factory=dict)  # day -> BilledCost of what must count
    datasets: dict[str, str | None] = field(
        default_factory=dict
    )  # key -> dataset kind, where the layout says
    rows: dict[str, int] = field(default_factory=dict)  # key -> data rows (for dataRowCount)

    def put(self, key: str, data: bytes, rank: int = 0) -> None:
        self.files[key] = data
        self.rank[key] = rank

    def count(self, key: str, days: tuple[date, ...] | None, dataset: str | None = None) -> None:
        """`key` must count for `days` (None: every day its rows hold), and its rows then add to the totals."""
        self.expected[key] = days
        self.datasets[key] = dataset
        for day, billed in billed_by_day(self.files[key], key).items():
            if days is None or day in days:
                self.totals[day] = self.totals.get(day, Decimal(0)) + billed

    def merge(self, other: Tree) -> Tree:
        for attr in ("files", "rank", "expected", "datasets", "rows"):
            getattr(self, attr).update(getattr(other, attr))
        for day, billed in other.totals.items():
            self.totals[day] = self.totals.get(day, Decimal(0)) + billed
        return self


@functools.cache
def _day(day: date) -> tuple[dict[str, str], ...]:
    return tuple(list(csv.DictReader(io.StringIO(focus_csv(day).decode())))[:_ROWS_PER_DAY])


def rows(days: list[date], factor: str) -> list[dict[str, str]]:
    """The sample's first rows of each day, BilledCost and EffectiveCost times `factor`."""
    out = []
    for day in days:
        for r in map(dict, _day(day)):
            r["BilledCost"] = str(Decimal(r["BilledCost"]) * Decimal(factor))
            r["EffectiveCost"] = str(Decimal(r["EffectiveCost"]) * Decimal(factor))
            out.append(r)
    return out


def csv_bytes(rs: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rs[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rs)
    return buf.getvalue().encode()


def parquet_bytes(rs: list[dict[str, str]]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.csv", Path(tmp) / "out.parquet"
        src.write_bytes(csv_bytes(rs))
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT * FROM read_csv($src, all_varchar = true)) TO '{out}' (FORMAT parquet)",
                        {"src": str(src)})  # fmt: skip
        return out.read_bytes()


def zip_bytes(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


def billed_by_day(data: bytes, key: str) -> dict[date, Decimal]:
    """BilledCost per charge day of a file's bytes, read with csv and Decimal (Parquet through DuckDB)."""
    if key.endswith(".parquet"):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "f.parquet").write_bytes(data)
            with duckdb.connect() as con:
                got = con.execute("SELECT ChargePeriodStart, BilledCost FROM read_parquet($p)",
                                  {"p": str(Path(tmp) / "f.parquet")}).fetchall()  # fmt: skip
        pairs = [(str(s), str(b)) for s, b in got]
    else:
        if key.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = zf.read(zf.namelist()[0])
        text = gzip.decompress(data).decode() if key.endswith(".gz") else data.decode()
        pairs = [(r["ChargePeriodStart"], r["BilledCost"]) for r in csv.DictReader(io.StringIO(text))]
    out: dict[date, Decimal] = {}
    for start, billed in pairs:
        day = date.fromisoformat(start[:10])
        out[day] = out.get(day, Decimal(0)) + Decimal(billed)
    return out
