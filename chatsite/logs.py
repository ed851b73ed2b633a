"""Log formats: every line with its time and level; the chat's own lines as JSON if asked.

With `CHAT_LOG_FORMAT=json` each line of the `chat` loggers is one JSON
object, for a log shipper to read without parsing sentences:
`{"time", "level", "logger", "message"}`, plus `room` and `channel` when the
line is about one (given with `extra=`), and `exception` with a traceback.
The lines of Django, uvicorn and Daphne stay text, with time and level too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

# What a chat log call may add with `extra=` that belongs in a JSON line.
CONTEXT_FIELDS = ("room", "channel")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
