"""Test fixture: allocated pieces written as the allocation writes them, for tests of what reads them (marts,
budgets, KPIs) without running the allocation.

Each distinct `x_LineId` of the pieces becomes one cost cell of one line (core.cost_cells, with the cell
attributes given per line: Tags, PricingCategory, ...), and each piece a row of core.allocated_cells with weight
1 of 1 (the line view then shows each piece once, as the line's whole cost: give one piece per line, or use only
the cell tables). Returns x_LineId -> cid.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from mlcost_pipeline.allocation.cells_schema import ensure_cell_tables


def insert_pieces(
    con: duckdb.DuckDBPyConnection, pieces: list[Mapping[str, object]],
    cells: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, int]:  # fmt: skip
    ensure_cell_tables(con)
    cids = {line: i for i, line in enumerate(dict.fromkeys(str(p["x_LineId"]) for p in pieces), start=1)}
    days = {str(p["x_LineId"]): p["charge_date"] for p in pieces}
    for line, cid in cids.items():
        extra = dict((cells or {}).get(line, {}))
        row = {"cid": cid, "cell_key": line, "x_ChargeDate": days[line], "line_count": 1, **extra}
        con.execute(f"INSERT INTO core.cost_cells ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))  # fmt: skip
    for p in pieces:
        row = {"cid": cids[str(p["x_LineId"])], "piece": 0, "line_count": 1, "p": 1, "ptotal": 1, "fx_num": 1,
               "fx_den": 1, "ratio": 1, **{k: v for k, v in p.items() if k != "x_LineId"}}  # fmt: skip
        con.execute(f"INSERT INTO core.allocated_cells ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))  # fmt: skip
    return cids
