"""The largest-remainder split in SQL: its 64-bit path and its 128-bit path give the exact integer answer."""

from __future__ import annotations

import random

import duckdb

from mlcost_pipeline.allocation.currency import install_macros
from mlcost_pipeline.allocation.split_sql import largest_remainder_ctes

FAST_LIMIT, PARTS_LIMIT = 2**62, 2**53


def _expected(ua: int, parts: list[int]) -> list[int]:
    """Largest remainder in Python integers: floor shares, then one unit each to the largest remainders."""
    total = sum(parts)
    shares = [ua * p // total for p in parts]
    rest = ua - sum(shares)
    order = sorted(range(len(parts)), key=lambda i: (-(ua * parts[i] % total), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def _cases() -> list[tuple[int, list[int]]]:
    rng = random.Random(7)
    cases = [
        (FAST_LIMIT - 1, [PARTS_LIMIT - 2, 1]),  # the 64-bit path's edges
        (FAST_LIMIT - 1, [1] * 7),
        (FAST_LIMIT, [3, 3, 3]),  # just past them: the 128-bit path
        (10**30, [10**15 // 3] * 3),
        (0, [5, 0, 7]),
        (10**12, [0, 10**15]),
    ]
    for _ in range(300):
        k = rng.randint(1, 9)
        total = rng.choice([10**15, PARTS_LIMIT - 1, rng.randint(1, 10**15)])
        cuts = sorted(rng.randint(0, total) for _ in range(k - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
        ua = rng.choice([rng.randint(0, 10**14), rng.randint(0, FAST_LIMIT - 1), rng.randint(0, 10**35)])
        cases.append((ua, parts))
    return cases


def test_both_paths_match_exact_integer_largest_remainder():
    cases = _cases()
    rows = []
    for cid, (ua, parts) in enumerate(cases):
        ur = ua // 3  # the converted amount takes the same path rules
        for pno, p in enumerate(parts):
            rows.append((cid, pno, str(p), str(sum(parts)), str(ua), str(ur)))
    con = duckdb.connect()
    install_macros(con)
    con.execute("CREATE TABLE src (cid INTEGER, pno INTEGER, p HUGEINT, ptotal HUGEINT, ua HUGEINT, ur HUGEINT)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?)", rows)
    got = con.execute(
        f"WITH s AS (SELECT cid, 'pool' AS src, NULL AS wid, pno, p, ptotal, ua, ur FROM src), "  # noqa: S608
        f"{largest_remainder_ctes('s', 'split')} "
        "SELECT cid, list(CAST(a_units AS VARCHAR) ORDER BY pno), list(CAST(r_units AS VARCHAR) ORDER BY pno) "
        "FROM split GROUP BY cid ORDER BY cid"
    ).fetchall()
    assert len(got) == len(cases)
    for (cid, a_units, r_units), (ua, parts) in zip(got, cases, strict=True):
        assert [int(x) for x in a_units] == _expected(ua, parts), (cid, ua, parts)
        assert [int(x) for x in r_units] == _expected(ua // 3, parts), (cid, ua, parts)
