"""dbt_like_sql discovery: `<root>/<schema>/<table>.sql` files become models, `<root>/tests/*.sql` singular tests.

A model is one SELECT; the runner owns the DDL. Dependencies are read from the SQL with sqlglot scope analysis
(the lea approach: every table of every scope, minus CTE names and table functions such as read_parquet), never
hand-listed. The file text is what runs: sqlglot is only used to read it, because re-rendering would turn the
`$start_date` parameters into `:start_date`.

Front matter is a comment line in the leading comment block:
    -- partitioned_by: charge_date          (models: rebuilt one date window at a time, see below)
    -- asset: marts.cost_per_project_daily  (tests: the model the check is attached to)
A partitioned model reads its window through the DuckDB parameters `$start_date` and `$end_date` (DATE, end
exclusive); a full-rebuild model takes no window. Any model or test may also read configuration through the
parameters in CONFIG_PARAMS (`$kpi_metrics`, a VARCHAR[] of MLflow metric names, and `$quality_metric`): the runner
binds them from settings, so a configured name never becomes SQL text, and a model's code version includes the
values it reads, so a configuration change shows the model as changed in the UI.

`fed_only_by` derives, from the same dependencies, which models hold nothing but what a given set of tables feeds
(e.g. MLflow runs): the runner reports a test that reads only such tables as not applicable when that source is off.
"""

from __future__ import annotations

import graphlib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

TESTS_FOLDER = "tests"
WINDOW_PARAMS = frozenset({"start_date", "end_date"})
CONFIG_PARAMS = frozenset({"kpi_metrics", "quality_metric"})

TableKey = tuple[str, str]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FRONT_MATTER = re.compile(r"^--\s*(partitioned_by|asset)\s*:\s*(\S+)\s*$", re.IGNORECASE)


class SqlModelError(ValueError):
    """A dbt_like_sql file that cannot be run: the message names the file and what is wrong."""


@dataclass(frozen=True)
class SqlModel:
    schema: str
    table: str
    path: Path
    sql: str  # the file text, verbatim
    statement: str  # the same text without its trailing semicolon, ready to embed in DDL
    description: str
    code_version: str
    partitioned_by: str | None
    deps: frozenset[TableKey]
    config_params: frozenset[str] = frozenset()

    @property
    def key(self) -> TableKey:
        return (self.schema, self.table)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class SqlTest:
    """A query returning the rows that violate a property of `model`; no rows means the test passes."""

    name: str
    path: Path
    sql: str
    statement: str
    description: str
    model: TableKey
    refs: frozenset[TableKey]
    config_params: frozenset[str] = frozenset()


def discover(root: Path) -> list[SqlModel]:
    """Every model under `root`, sorted by (schema, table). Files and folders starting with `_` are skipped."""
    if not Path(root).is_dir():
        # A mistyped root would otherwise give a code location with no SQL assets and no error.
        raise SqlModelError(f"{root}: no such dbt_like_sql folder")
    models = []
    for path in sorted(Path(root).glob("*/*.sql")):
        schema, table = path.parent.name, path.stem
        if schema == TESTS_FOLDER or _skipped(path):
            continue
        _check_name(path, schema, "folder (schema)")
        _check_name(path, table, "file name (table)")
        models.append(_load_model(path, schema, table))
    return models


def discover_tests(root: Path) -> list[SqlTest]:
    """Singular tests in `<root>/tests/`, each attached to the `-- asset:` header's model or its only model ref."""
    models = {m.key for m in discover(root)}
    tests = []
    for path in sorted((Path(root) / TESTS_FOLDER).glob("*.sql")):
        if _skipped(path):
            continue
        _check_name(path, path.stem, "file name (test)")
        text = path.read_text()
        statement, tree = _single_select(path, text)
        refs = _table_refs(path, tree)
        params = {p.name for p in tree.find_all(exp.Placeholder)}
        if params - CONFIG_PARAMS:
            # Checks are not partitioned: a test reads whole tables, so it has no window to bind.
            raise SqlModelError(
                f"{path}: a test takes no window parameters; check the whole table "
                f"(it may read {sorted('$' + p for p in CONFIG_PARAMS)})"
            )
        front = _front_matter(text)
        if "asset" in front:
            model = _parse_key(path, front["asset"])
            if model not in refs:
                raise SqlModelError(
                    f"{path}: the header names {_dotted(model)}, which the query does not read"
                )
        else:
            candidates = (refs & models) or refs
            if len(candidates) != 1:
                raise SqlModelError(
                    f"{path}: cannot tell which model this test checks (it reads "
                    f"{', '.join(sorted(map(_dotted, candidates))) or 'no table'}); "
                    "add a header line such as `-- asset: marts.cost_per_project_daily`"
                )
            (model,) = candidates
        tests.append(
            SqlTest(path.stem, path, text, statement, _description(text), model, refs, frozenset(params))
        )
    return tests


def build_order(models: Iterable[SqlModel], known_external: set[TableKey]) -> list[SqlModel]:
    """Models in dependency order; fails on a reference to an unknown table and on a cycle."""
    by_key = {m.key: m for m in models}
    graph: dict[TableKey, set[TableKey]] = {}
    for key in sorted(by_key):
        model = by_key[key]
        if key in known_external:
            raise SqlModelError(f"{model.path}: {_dotted(key)} is also produced by a Python asset")
        for dep in sorted(model.deps):
            if dep not in by_key and dep not in known_external:
                raise SqlModelError(
                    f"{model.path}: reads {_dotted(dep)}, which is neither a dbt_like_sql model nor a known asset"
                )
        graph[key] = {d for d in model.deps if d in by_key}
    try:
        return [by_key[k] for k in graphlib.TopologicalSorter(graph).static_order()]
    except graphlib.CycleError as e:
        cycle = e.args[1]
        raise SqlModelError(
            f"{by_key[cycle[0]].path}: dependency cycle {' -> '.join(map(_dotted, cycle))}"
        ) from None


def fed_only_by(models: Iterable[SqlModel], sources: set[TableKey]) -> frozenset[TableKey]:
    """`sources` plus every model all of whose dependencies are in that set, transitively (a fixed point)."""
    fed, pending = set(sources), [m for m in models if m.deps]
    changed = True
    while changed:
        changed = False
        for model in list(pending):
            if model.deps <= fed:
                fed.add(model.key)
                pending.remove(model)
                changed = True
    return frozenset(fed)


def reads_only(test: SqlTest, tables: frozenset[TableKey]) -> bool:
    """Whether every table the test reads (and the one it checks) is in `tables`."""
    return (test.refs | {test.model}) <= tables


def validate_tests(
    tests: Iterable[SqlTest], models: Iterable[SqlModel], known_external: set[TableKey]
) -> None:
    """Each test must check a known table and read only known tables."""
    known = {m.key for m in models} | set(known_external)
    for test in tests:
        for ref in sorted(test.refs | {test.model}):
            if ref not in known:
                raise SqlModelError(
                    f"{test.path}: reads {_dotted(ref)}, which is neither a dbt_like_sql model nor a known asset"
                )


def _load_model(path: Path, schema: str, table: str) -> SqlModel:
    text = path.read_text()
    statement, tree = _single_select(path, text)
    front = _front_matter(text)
    partitioned_by = front.get("partitioned_by")
    if partitioned_by is not None and not _COLUMN.match(partitioned_by):
        raise SqlModelError(f"{path}: partitioned_by {partitioned_by!r} is not a plain column name")
    params = {p.name for p in tree.find_all(exp.Placeholder)}
    expected = WINDOW_PARAMS if partitioned_by else frozenset()
    if params - CONFIG_PARAMS != expected:
        raise SqlModelError(
            f"{path}: a {'partitioned' if partitioned_by else 'full-rebuild'} model takes the parameters "
            f"{sorted('$' + p for p in expected) or 'none'} (and optionally {sorted('$' + p for p in CONFIG_PARAMS)}), "
            f"this one uses {sorted('$' + p for p in params - CONFIG_PARAMS) or 'none'}"
        )
    return SqlModel(
        schema=schema,
        table=table,
        path=path,
        sql=text,
        statement=statement,
        description=_description(text),
        code_version=hashlib.sha256(text.encode()).hexdigest()[:12],
        partitioned_by=partitioned_by,
        deps=_table_refs(path, tree),
        config_params=frozenset(params & CONFIG_PARAMS),
    )


def _single_select(path: Path, text: str) -> tuple[str, exp.Query]:
    try:
        parsed = sqlglot.parse(text, dialect="duckdb")
        tokens = sqlglot.tokenize(text, read="duckdb")
    except sqlglot.errors.SqlglotError as e:
        raise SqlModelError(f"{path}: not valid DuckDB SQL: {e}") from None
    # A trailing `;` (with or without a comment after it) parses as an empty statement.
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        kinds = ", ".join(type(s).__name__.upper() for s in statements) or "nothing"
        raise SqlModelError(f"{path}: must hold exactly one SELECT statement, found {kinds}")
    statement = text
    if tokens and tokens[-1].token_type == sqlglot.TokenType.SEMICOLON:
        statement = text[: tokens[-1].start]
    return statement.rstrip(), statements[0]


def _table_refs(path: Path, tree: exp.Expression) -> frozenset[TableKey]:
    refs = set()
    for scope in traverse_scope(tree):
        for table in scope.tables:
            if isinstance(table.this, exp.Func) or (not table.db and table.name in scope.cte_sources):
                continue
            if table.catalog or not table.db:
                raise SqlModelError(
                    f"{path}: write table references as schema.table, found {table.sql('duckdb')}"
                )
            refs.add((table.db.lower(), table.name.lower()))
    return frozenset(refs)


def _header(text: str) -> list[str]:
    lines = []
    for line in text.lstrip().splitlines():
        if not line.strip().startswith("--"):
            break
        lines.append(line.strip())
    return lines


def _front_matter(text: str) -> dict[str, str]:
    return {m[1].lower(): m[2] for m in map(_FRONT_MATTER.match, _header(text)) if m}


def _description(text: str) -> str:
    kept = [line[2:].strip() for line in _header(text) if not _FRONT_MATTER.match(line)]
    return "\n".join(kept).strip()


def _parse_key(path: Path, dotted: str) -> TableKey:
    parts = dotted.lower().split(".")
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise SqlModelError(f"{path}: `-- asset:` wants schema.table, found {dotted!r}")
    return (parts[0], parts[1])


def _check_name(path: Path, name: str, what: str) -> None:
    # Names end up in DDL, where they cannot be bound as parameters: plain lower-case identifiers only.
    if not _IDENT.match(name):
        raise SqlModelError(f"{path}: {what} {name!r} must be a lower-case SQL identifier")


def _skipped(path: Path) -> bool:
    return path.name.startswith("_") or path.parent.name.startswith(("_", "."))


def _dotted(key: TableKey) -> str:
    return ".".join(key)
