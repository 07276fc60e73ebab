"""The server's log lines: uvicorn's text format, or one JSON object per line (``MODELHARBOR_LOG_FORMAT=json``).

:func:`log_config` is the ``logging.config.dictConfig`` both ``modelharbor serve`` and ``modelharbor worker``
run: uvicorn's own configuration, with ModelHarbor's loggers (``modelharbor.*``) printed the same way; in the JSON
format every formatter is :class:`JsonFormatter`. :func:`announce` prints the start-up lines (URL, where the admin
key is) in the same format.

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; an access line also
``client``, ``method``, ``path``, ``http_version`` and ``status``; a failure's traceback is ``exception`` (one
string: the line stays one line); fields a caller passed with ``extra=`` come along.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has: anything else on a record came from ``extra=`` (uvicorn's color_message aside).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def _time(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args  # uvicorn's access line, and api/http.py's
            out.update(client=client, method=method, path=path, http_version=version, status=status)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging configuration with ModelHarbor's loggers added, in the format ``fmt`` (text, json). In
    the JSON format Python's warnings (``warnings.warn``, which print text to standard error) become log records
    too (``py.warnings``), so that no line of the log is anything but JSON."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["modelharbor"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    if fmt == "json":
        for name in config["formatters"]:
            config["formatters"][name] = {"()": f"{__name__}.JsonFormatter"}
        config["loggers"]["py.warnings"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
        logging.captureWarnings(True)
    return config


def announce(lines: list[str], fmt: str = "text") -> None:
    """Print the server's start-up lines (always, whatever the level): as they are, or each as a JSON line."""
    if fmt == "json":
        now = _time(datetime.now(UTC).timestamp())
        text = "\n".join(
            json.dumps({"time": now, "level": "INFO", "logger": "modelharbor", "message": line}, ensure_ascii=False)
            for line in lines
        )
    else:
        text = "\n".join(lines)
    print(text, file=sys.stdout, flush=True)
