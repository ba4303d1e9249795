"""The allocation's SQL templates (allocation/sql/*.sql, Jinja2) and how they are rendered.

One file per statement (`charges.sql`, `allocate.sql`, ...); files starting with `_` hold the Jinja macros
the statements share. Only identifiers and structure from the validated rules are rendered (column names from
fixed lists, a FOCUS cost column, positions in the parsed tags struct, parameter names we make); every value
stays a bound `$parameter`, and `bound_names` reads back which ones a rendered statement needs. Undefined
template variables are errors (StrictUndefined), so a template and its context cannot drift apart silently.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import jinja2

SQL_DIR = Path(__file__).resolve().parent / "sql"
WINDOW = frozenset({"start", "end"})  # bound per window by the engine, never part of a rendered plan

# `$name` where name is an identifier: DuckDB's named parameters. JSON paths ('$.a') and regexes ('x$') in our
# templates never look like this; a test renders every template and checks each name is bound.
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 (SQL, not HTML; values never enter the text)
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **context: object) -> str:
    """The statement `name` (a file under sql/) rendered with `context`."""
    return environment().get_template(name).render(**context).strip()


def macro(template: str, name: str):
    """A macro of a partial template, callable from Python (e.g. the split for tests of its arithmetic)."""
    return getattr(environment().get_template(template).module, name)


def bound_names(sql: str) -> set[str]:
    return set(_PARAMETER.findall(sql))


def template_names() -> list[str]:
    return sorted(p.name for p in SQL_DIR.glob("*.sql"))
