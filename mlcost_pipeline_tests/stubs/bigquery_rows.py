"""BigQuery REST row encoding for the GCP stub: DuckDB types and values -> BigQuery schema fields and cells.

Types come from DESCRIBE output (text, not DuckDBPyType objects, which leak when created in a server thread);
TIMESTAMP cells are int64 microseconds as text (the client asks for formatOptions.useInt64Timestamp).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

_BQ_TYPES = {"varchar": "STRING", "double": "FLOAT", "float": "FLOAT", "decimal": "NUMERIC", "bigint": "INTEGER",
             "integer": "INTEGER", "hugeint": "INTEGER", "timestamp": "TIMESTAMP", "date": "DATE",
             "boolean": "BOOLEAN", '"null"': "STRING", "null": "STRING"}  # fmt: skip


def naive(text: str | None) -> str | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return (moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment).isoformat()


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def field(name: str, typ: str) -> dict:
    """A BigQuery schema field from a DuckDB type name (as DESCRIBE prints it: no DuckDBPyType objects, which
    leak when created in a server thread)."""
    typ = typ.strip()
    if typ.endswith("[]"):
        return {**field(name, typ[:-2]), "mode": "REPEATED"}
    if typ.upper().startswith("STRUCT("):
        members = []
        for part in _split_top(typ[7:-1]):
            member, _, member_type = part.partition(" ")
            members.append(field(member.strip('"'), member_type))
        return {"name": name, "type": "RECORD", "mode": "NULLABLE", "fields": members}
    base = typ.split("(")[0].lower()
    return {"name": name, "type": _BQ_TYPES.get(base, "STRING"), "mode": "NULLABLE"}


def cell(field: dict, value, repeated_item: bool = False):
    if value is None:
        return None
    if field.get("mode") == "REPEATED" and not repeated_item:
        return [{"v": cell(field, v, True)} for v in value]
    if field["type"] == "RECORD":
        return {"f": [{"v": cell(f, value.get(f["name"]))} for f in field["fields"]]}
    if field["type"] == "TIMESTAMP":
        return str(int(value.replace(tzinfo=UTC).timestamp() * 1_000_000))
    if field["type"] == "BOOLEAN":
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value) if not isinstance(value, str) else value
