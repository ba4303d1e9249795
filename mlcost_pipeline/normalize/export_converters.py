"""Which dataset a file is, from its columns, and the converter that turns it into FOCUS columns.

FOCUS files are recognised by ChargePeriodStart (every FOCUS version since 0.5 has it; no provider's native
export does); AWS CUR by its own column sets (aws_cur_sql.dataset_of); Azure cost details by theirs
(azure_cost_details_sql.matches). A file that is none of these is read as FOCUS, so its error names the missing
FOCUS column.
"""

from __future__ import annotations

from mlcost_pipeline.normalize import aws_cur_sql, azure_cost_details_sql
from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.export_datasets import Converted, ConvertOptions
from mlcost_pipeline.normalize.focus_schema import NormalizationError


def detect_dataset(columns: list[str]) -> str:
    if "chargeperiodstart" in {c.lower() for c in columns}:
        return ds.FOCUS
    return aws_cur_sql.dataset_of(columns) or (
        ds.AZURE_COST_DETAILS if azure_cost_details_sql.matches(columns) else ds.FOCUS
    )


def classify_azure(con, scan: str, columns: list[tuple[str, str]], params: dict) -> tuple[str | None, str]:
    """A bare Azure cost-details file: actual or amortized, from its rows (None when it cannot tell)."""
    return azure_cost_details_sql.classify(con, scan, columns, params)


def convert(dataset: str, scan: str, columns: list[tuple[str, str]], options: ConvertOptions) -> Converted:
    if dataset in ds.AZURE_DATASETS:
        return azure_cost_details_sql.convert(scan, columns, options, dataset=dataset)
    if dataset in ds.AWS_CUR_DATASETS:
        return aws_cur_sql.convert(scan, columns, options)
    raise NormalizationError(f"unknown export dataset {dataset!r}; expected one of {ds.DATASETS}")
