"""The datasets an export folder holds, and the contract between a dataset's converter and the FOCUS reader.

A provider export file is one of these datasets. FOCUS files are read as they are; every other dataset has a
converter (one module each, pure SQL text) that turns the file's own columns into FOCUS 1.2 columns, and the FOCUS
reader (focus_export_sql) then parses, checks and hashes the converted rows exactly as it does a FOCUS file, so
every dataset gets the same checks, the same tolerance rules and the same error messages.

Converter contract (`convert(scan, columns, options) -> Converted`):
- `scan` is a relation (SQL text) yielding every column of the file under its own name, plus `__row`: the
  1-based position of the data row in the file (the header is not a row). It binds `$path`.
- `columns` is `[(name, DuckDB type)]` of the file, `__row` excluded: VARCHAR for every CSV column (CSV is read
  with all_varchar), the stored types for Parquet.
- `Converted.sql` selects from `scan` and yields FOCUS 1.2 column names (any subset: the reader supplies the
  documented fallbacks) plus `__row` passed through unchanged; it may also yield the contract's own x_ columns
  (x_ResourceGroupName, x_CurrencyConversionRate). It may drop rows (WHERE); `__row` keeps the file position.
- Values are FOCUS-formatted text (ISO 8601 UTC timestamps, plain decimal text for money, Tags as a flat JSON
  object) or typed DuckDB values (DECIMAL, DOUBLE, TIMESTAMP, DATE). Where a source value cannot be converted,
  the converter passes the source text through unchanged, so the reader's check names the bad value.
- Parameters it binds are named `<dataset>_<name>` and returned in `Converted.params`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

FOCUS = "focus"
AZURE_ACTUAL = "azure_actual"  # Cost Management ActualCost export (billed basis)
AZURE_AMORTIZED = "azure_amortized"  # AmortizedCost export (commitments amortized)
AZURE_USAGE = "azure_usage"  # Usage export (pay-as-you-go, management groups): usage only
AZURE_COST_DETAILS = "azure_cost_details"  # a bare cost-details file not yet classified actual or amortized
AWS_CUR2 = "aws_cur2"  # AWS Data Exports CUR 2.0 (snake_case, map columns)
AWS_CUR_LEGACY = "aws_cur_legacy"  # legacy Cost and Usage Report (lineItem/... CSV or snake_case Parquet)
DATASETS = (FOCUS, AZURE_ACTUAL, AZURE_AMORTIZED, AZURE_USAGE, AZURE_COST_DETAILS, AWS_CUR2, AWS_CUR_LEGACY)
AZURE_DATASETS = (AZURE_ACTUAL, AZURE_AMORTIZED, AZURE_USAGE, AZURE_COST_DETAILS)
AWS_CUR_DATASETS = (AWS_CUR2, AWS_CUR_LEGACY)


@dataclass(frozen=True)
class ConvertOptions:
    """What a converter needs to know beyond the file itself."""

    # Azure ActualCost only: the UTC days for which an AmortizedCost export of the same scope is read too. On
    # those days only commitment (Reservation, SavingsPlan) Purchase and Refund rows are kept from the actual
    # export; every other actual row is already in the amortized one (ConvertTo-FinOpsSchema).
    paired_days: tuple[date, ...] = ()


@dataclass(frozen=True)
class Converted:
    sql: str  # SELECT ... FROM <scan>: FOCUS-named columns and __row
    params: dict[str, object] = field(default_factory=dict)
    source_of: dict[str, str] = field(default_factory=dict)  # FOCUS column -> the file column(s) it comes from


Converter = Callable[[str, list[tuple[str, str]], ConvertOptions], Converted]
