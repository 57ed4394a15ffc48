"""Where an alert goes: the log, a JSON-lines file, a webhook. One attempt per call.

A webhook receives ``POST`` with the JSON body ``{"type": "modelworks.alert", "text": ...,
"timestamp": ..., "attempt": ..., "alert": {...}}`` and two headers:
``X-Modelworks-Timestamp`` (Unix seconds, equal to the body's ``timestamp``) and, when the
sink names ``secret_env``, ``X-Modelworks-Signature: sha256=<hex HMAC-SHA256 of the body>``.
Because the timestamp is inside the signed body, a receiver can refuse stale replays.
Retrying (``delivery.py``) is the caller's business; here a failure says whether a retry
could help: network errors, timeouts, 5xx, 408 and 429 can; other answers cannot.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from .plan import FileSink, WebhookSink
from .store import Alert

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SinkError", "file_path", "send_file",
           "send_log", "send_webhook", "sign", "verify_signature", "webhook_body"]

SIGNATURE_HEADER = "X-Modelworks-Signature"
TIMESTAMP_HEADER = "X-Modelworks-Timestamp"
logger = logging.getLogger("modelworks.alerts")
# The stderr line is the console output; records reach handlers the application configured,
# and Python's last-resort handler does not print them a second time.
logger.addHandler(logging.NullHandler())
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_STYLES = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


class SinkError(Exception):
    """One failed attempt; ``retry`` says whether another attempt could succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """What a receiver checks (in constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def send_log(alert: Alert) -> None:
    """Python logging at the alert's severity, and one line on stderr."""
    logger.log(_LEVELS.get(alert.severity, logging.WARNING), "alert %s: %s", alert.id,
               alert.message, extra={"alert": alert.model_dump(mode="json")})
    line = Text.assemble(("ALERT ", _STYLES.get(alert.severity, "")),
                         (f"[{alert.severity}] ", _STYLES.get(alert.severity, "")),
                         alert.message)
    Console(stderr=True, highlight=False).print(line, soft_wrap=True)


def file_path(sink: FileSink) -> Path:
    return Path(sink.path).expanduser().absolute()


def _lock_for(path: Path) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(str(path), threading.Lock())


def send_file(alert: Alert, sink: FileSink) -> None:
    """Append the alert as one JSON line; threads and processes take turns (flock)."""
    path = file_path(sink)
    line = json.dumps(alert.model_dump(mode="json"), ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock_for(path), path.open("a", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise SinkError(f"cannot append to {path}: {exc.strerror or exc}", retry=True) from exc


def webhook_body(alert: Alert, *, attempt: int, timestamp: int) -> bytes:
    body: dict[str, Any] = {"type": "modelworks.alert", "text": alert.message,
                            "timestamp": timestamp, "attempt": attempt,
                            "alert": alert.model_dump(mode="json")}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would lose its body or change method: report it instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send_webhook(alert: Alert, sink: WebhookSink, *, attempt: int) -> int:
    """POST the alert once; the HTTP status on success, else SinkError."""
    secret = None
    if sink.secret_env is not None:
        secret = os.environ.get(sink.secret_env)
        if not secret:
            raise SinkError(f"environment variable {sink.secret_env} (the webhook secret) is "
                            "not set", retry=False)
    timestamp = int(time.time())
    body = webhook_body(alert, attempt=attempt, timestamp=timestamp)
    headers = {"Content-Type": "application/json", "User-Agent": "modelworks-alerts",
               TIMESTAMP_HEADER: str(timestamp)}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    request = urllib.request.Request(sink.url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=sink.timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        code = exc.code
        raise SinkError(f"HTTP {code} {exc.reason}", retry=code >= 500 or code in (408, 429)
                        ) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
        reason = getattr(exc, "reason", exc)
        raise SinkError(f"{type(exc).__name__}: {reason}", retry=True) from None
