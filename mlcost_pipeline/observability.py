"""Structured log lines: an event name and key=value fields (logfmt), with secrets kept out.

Dagster stores a log call's message text in its event log and shows it in the UI, so the fields go into the text
itself, where `grep`, Loki or any logfmt parser can read them; they are passed as `extra` too (the `mlcost`
attribute of the LogRecord), which JSON loggers such as Dagster's `json_console_logger` print.

A field whose name looks like a credential is never printed, and URLs lose their user:password part and the
values of query parameters that carry tokens (SAS signatures, `?token=`), whatever the field is called.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"secret|token|passw|pwd|credential|api[_-]?key|access[_-]?key|private[_-]?key|authorization|signature|"
    r"cookie|connection[_-]?string|dsn",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[a-z0-9_.-]*(?:token|secret|key|password|passwd|pwd|signature|credential|auth)[a-z0-9_.-]*"
    r"|sig|code))=(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
_BARE = re.compile(r"^[A-Za-z0-9_./:@+*\-\[\](),]+$")


def redact_text(text: str) -> str:
    """`text` with URL credentials and secret query values replaced by ***."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}={REDACTED}", text)


def redact(name: str, value: object) -> str:
    if _SECRET_NAME.search(name):
        return REDACTED
    return str(value).lower() if isinstance(value, bool) else redact_text(str(value))


def _quoted(value: str) -> str:
    if value and _BARE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def logfmt(event: str, fields: Mapping[str, object]) -> str:
    """`event=<event> k=v ...`, values redacted and quoted when they hold spaces or quotes."""
    parts = [f"event={_quoted(event)}"]
    parts += [f"{k}={_quoted(redact(k, v))}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: object) -> str:
    """Log one structured line on `logger` (a logging.Logger or Dagster's `context.log`) and return it."""
    line = logfmt(event, fields)
    safe = {k: redact(k, v) for k, v in fields.items() if v is not None}
    logger.log(level, line, extra={"mlcost": {"event": event, **safe}})
    return line
