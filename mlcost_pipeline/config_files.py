"""Reading the YAML config files (allocation rules, budgets): one-line errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError


def read_yaml_mapping(path: Path, kind: str, error: type[Exception], expected: str) -> tuple[str, dict]:
    """(text, parsed mapping) of a config file; `error` of one line when it is unreadable, not YAML or no mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read {kind} file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: (top level): expected a mapping with {expected}, got {type(data).__name__}")
    return text, data


def validation_message(path: Path, exc: ValidationError) -> str:
    """The first pydantic error as `file: dotted.field: message`.

    A validator may raise "@a.b: message" to put its error at a field below the one it validates.
    """
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if msg.startswith("@"):
        where, _, msg = msg[1:].partition(": ")
        loc += where.split(".")
    return f"{path}: {'.'.join(loc) or '(top level)'}: {' '.join(msg.split())}"
