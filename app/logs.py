"""Structured logs: one JSON object per line on stderr, for `atrium serve` and `atrium worker`.

Every record carries time, level, logger and message. The access log
(`app.http.RequestContextMiddleware`, logger `atrium.access`) already writes its fields —
request id, method, path, status, ms, user, repo — as a JSON object; those fields are lifted
into the line itself so that a log pipeline can filter on `request_id` or `repo` without parsing
a message. uvicorn's own access log is turned off by `serve`: it would repeat each request as
text, query string included, and the signed transfer URLs carry their signatures there.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

# Record attributes that are not `extra` fields; uvicorn adds an ANSI-coloured copy of its
# messages as `color_message`, which a log pipeline has no use for.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; `extra={...}` fields are included as they are."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        fields = _json_object(message) if record.name == "atrium.access" else None
        if fields is None:
            line["message"] = message
        else:
            line.update(fields)
        line.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def configure_logging(level: str) -> None:
    """Send every logger (ours, uvicorn's, libraries') to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.captureWarnings(True)  # `warnings.warn` of libraries: JSON lines too
    logging.getLogger("dulwich").setLevel(max(logging.WARNING, root.level))


def quiet_progress_bars() -> None:
    """No progress bars on stderr (they are not log lines), and none of tqdm's
    multiprocessing locks, which a worker leaving with `os._exit` would leak as semaphores."""
    import threading

    import tqdm

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    tqdm.tqdm.set_lock(threading.RLock())
