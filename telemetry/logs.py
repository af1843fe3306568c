"""Logging for the whole process, configured once by the entry point (the CLI).

One handler on the root logger, in one of two formats (``LOG_FORMAT``): ``json``, one object
per line for a log pipeline, or ``console``, one readable line for a person. Every line logged
while a request is served carries that request's operation id, GraphQL operation name, session
id and user id (``telemetry.context``), and the trace id when tracing is on. Litestar and
uvicorn only get loggers; they configure no handlers of their own.

Lines leave through a queue and a background thread, so a slow log consumer never blocks the
event loop. What must never be logged at INFO and above is scrubbed from every line: bearer
tokens, anything shaped like a JWT, and the query string of a URL (a Dataverse filter holds
product codes). httpx, httpcore, msal and urllib3 log every request URL at INFO: they are held
at WARNING unless LOG_LEVEL is DEBUG.
"""

from __future__ import annotations

import atexit
import copy
import logging
import queue
import re
import sys
import traceback
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any, Literal

import orjson
from opentelemetry import trace

from telemetry.context import current_scope

LogFormat = Literal["json", "console"]

# Libraries that log a full request URL (with its query) on every call.
CHATTY_LOGGERS = ("httpx", "httpcore", "msal", "urllib3", "hpack")
SCOPE_FIELDS = ("operation_id", "operation", "session_id", "user_id", "trace_id", "span_id")
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "exception",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
    *SCOPE_FIELDS,
}
_SECRETS = (
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), "[redacted token]"),
    # A query runs to the next space or double quote (OData literals are in single quotes).
    (re.compile(r"(\bhttps?://[^\s?\"<>]+)\?[^\s\"<>]*"), r"\1?[query redacted]"),
)


def scrub(text: str) -> str:
    """Return *text* without tokens and without the query strings of URLs."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RequestQueueHandler(QueueHandler):
    """Queue a copy of each record, stamped with its request's fields and trace.

    It runs in the thread (and context) that logged, so it sees the request scope and the
    current span; the copy is rendered here because it travels to another thread.
    """

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord], *, scrub_secrets: bool):
        super().__init__(records)
        self._scrub = scrub_secrets

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        message = record.getMessage()
        exception = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        if self._scrub:
            message, exception = scrub(message), scrub(exception)
        record = copy.copy(record)  # other handlers (pytest's, say) keep the original
        record.msg, record.message, record.args = message, message, None
        record.exception = exception.rstrip() or None
        record.exc_info = record.exc_text = record.stack_info = None
        scope = current_scope()
        if scope is not None:
            record.operation_id = scope.operation_id
            record.operation = scope.operation_name
            record.session_id = scope.session_id
            record.user_id = scope.user_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return record


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in SCOPE_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                line[name] = value
        exception = getattr(record, "exception", None)
        if exception:
            line["exception"] = exception
        return orjson.dumps(line, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """A line for a person: time, level, logger, message, then the request's fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [
            f"{name}={value}"
            for name in ("operation", "operation_id", "session_id", "user_id", "trace_id")
            if (value := getattr(record, name, None)) is not None
        ]
        if fields:
            text = f"{text}  [{' '.join(fields)}]"
        exception = getattr(record, "exception", None)
        return f"{text}\n{exception}" if exception else text


_listener: QueueListener | None = None


def configure_logging(
    level: str = "INFO", log_format: LogFormat = "json", *, stream: IO[str] | None = None
) -> logging.Handler:
    """Make the root logger the process's only log output; return the handler installed.

    Calling it again replaces the previous configuration (tests pass their own *stream*).
    """
    global _listener
    stop_logging()
    output = logging.StreamHandler(stream or sys.stderr)
    output.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = RequestQueueHandler(records, scrub_secrets=level != "DEBUG")
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    # uvicorn's access lines are replaced by the GraphQL request line (telemetry.http).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error", "litestar"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    _listener = QueueListener(records, output, respect_handler_level=False)
    _listener.start()
    return handler


def stop_logging() -> None:
    """Flush and stop the log thread (at exit, or before configuring again)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(stop_logging)
