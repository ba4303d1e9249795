"""The allocation SQL of the repo's rules, pinned: `mlcost sql` output equals a golden file byte for byte."""

from pathlib import Path

from mlcost_pipeline.allocation.rules import DEFAULT_RULES_PATH
from mlcost_pipeline.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden" / "allocation_sql.sql"
REGENERATE = (
    ".venv/bin/mlcost sql --rules rules/allocation.yaml --reporting-currency USD "
    "> mlcost_pipeline_tests/golden/allocation_sql.sql"
)


def test_rendered_sql_of_the_repo_rules_matches_the_golden_file(capsys):
    assert main(["sql", "--rules", str(DEFAULT_RULES_PATH), "--reporting-currency", "USD"]) == 0
    rendered = capsys.readouterr().out.encode()
    expected = GOLDEN.read_bytes()
    if rendered != expected:
        lines = zip(rendered.decode().splitlines(), expected.decode().splitlines(), strict=False)
        first = next((n for n, (a, b) in enumerate(lines, start=1) if a != b), None)
        where = f"first difference at line {first}" if first else "one is a prefix of the other"
        raise AssertionError(
            f"the rendered allocation SQL differs from {GOLDEN.name} ({where}). If the change is intended "
            f"(a template under mlcost_pipeline/allocation/sql/ or rules/allocation.yaml changed), "
            f"regenerate it from the repo root with:\n  {REGENERATE}\nand review the diff."
        )
