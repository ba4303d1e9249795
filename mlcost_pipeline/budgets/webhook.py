"""The budget-alert webhook: one JSON POST per evaluation listing the new alerts, Slack-compatible.

The body is `{"text": "..."}`, which Slack incoming webhooks, Mattermost, Rocket.Chat, Microsoft Teams workflow
webhooks and most chat tools accept. The URL usually carries a secret token in its path or query, so it is never
logged or stored: errors and logs name it as `redact_url(url)` (scheme, host and port only).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlcost_pipeline.budgets.alerts import Alert

MAX_LINES = 20  # a chat message listing hundreds of budgets helps nobody; the table has them all
TIMEOUT_SECONDS = 10.0


class WebhookUrlError(ValueError):
    """A webhook URL that cannot be used; the message shows the redacted URL only."""


@dataclass(frozen=True)
class Delivery:
    ok: bool
    status: int | None  # HTTP status, None when no response came
    error: str | None  # URL-free


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/…`: enough to tell which service, nothing of the token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme or '?'}://{host}{port}/…"


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError(f"MLCOST_BUDGET_WEBHOOK_URL: expected an http(s) URL, got {redact_url(url)}")
    return url.strip()


def _money(amount: object) -> str:
    return f"{amount:,.2f}"


def message(alerts: list[Alert]) -> dict[str, str]:
    """The JSON body: a Slack-compatible `text`, ERROR alerts first."""
    ordered = sorted(alerts, key=lambda a: (a.level != "ERROR", a.key))
    lines = [f"mlcost: {len(alerts)} new budget alert(s)"]
    for a in ordered[:MAX_LINES]:
        scope = f"project {a.project}" + (f" / model {a.model}" if a.model else "")
        what = "month-to-date cost" if a.basis == "actual" else "forecast month-end cost"
        lines.append(
            f"• {a.level} {scope} ({a.month:%Y-%m}): {what} {_money(a.amount)} {a.currency} is {a.pct}% of the "
            f"{_money(a.budget_amount)} {a.currency} budget (threshold {a.threshold_pct.normalize():f}%, "
            f"as of {a.as_of_date})"
        )
    if len(ordered) > MAX_LINES:
        lines.append(f"… and {len(ordered) - MAX_LINES} more in marts.budget_alerts")
    return {"text": "\n".join(lines)}


def post(url: str, body: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> Delivery:
    """POST `body` as JSON; never raises for HTTP or network errors (the caller records them), never shows `url`."""
    request = urllib.request.Request(
        check_url(url),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "mlcost-pipeline"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            response.read()
            return Delivery(True, response.status, None)
    except urllib.error.HTTPError as exc:
        exc.close()
        return Delivery(False, exc.code, f"HTTP {exc.code} from {redact_url(url)}")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # malformed answers too
        reason = getattr(exc, "reason", exc)
        # Some resolver and proxy errors quote the request; keep only the type and a scrubbed message.
        text = str(reason).replace(url, redact_url(url))
        return Delivery(
            False, None, f"{type(reason).__name__} posting to {redact_url(url)}: {_scrub(text, url)}"
        )


def _scrub(text: str, url: str) -> str:
    parts = urlsplit(url)
    for secret in (parts.path, parts.query, parts.password, parts.username):
        if secret and len(secret) > 1:
            text = text.replace(secret, "…")
    return text
