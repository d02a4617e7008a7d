"""Structured JSON logs. Document numbers are masked; secrets are never passed here."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from chalicelib.domain.members import mask_document

log = logging.getLogger("sucursal")
log.setLevel(logging.INFO)

_FORBIDDEN = frozenset({"password", "new_password", "temporary_key", "token", "session", "secret"})

# Fields every log line of the current request or job carries: ``correlation_id`` (one per request,
# schedule run or S3 event) and, inside a payment's use case, ``payment_id``.
_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Adds ``fields`` to every :func:`log_event` line written inside the ``with`` block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def correlation_id() -> str | None:
    """The current request's or job's correlation id, if one is bound."""
    return _context.get().get("correlation_id")


def new_correlation_id() -> str:
    """A fresh id (16 URL-safe characters) for a request or job that brought none."""
    from chalicelib.context import Runtime

    return Runtime.token(12)


def job_envelope(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware of the schedules and EventBridge events: every log line of one invocation
    carries its Lambda request id (``aws_request_id``), or a new id where there is no Lambda context
    (the local runner, tests)."""
    request_id = getattr(getattr(event, "context", None), "aws_request_id", None)
    if not isinstance(request_id, str) or not request_id:
        request_id = new_correlation_id()
    with log_context(correlation_id=request_id):
        return get_response(event)


def log_event(event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any) -> None:
    """One JSON line: ``event`` in OWASP logging-vocabulary terms where one applies; ``exc_info``
    appends the current exception's traceback to the same log record."""
    record: dict[str, Any] = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                              "event": event}
    for key, value in {**_context.get(), **fields}.items():
        if key in _FORBIDDEN:
            continue
        if key == "document_number" and isinstance(value, str):
            value = mask_document(value)
        record[key] = value
    log.log(level, json.dumps(record, ensure_ascii=False, default=str), exc_info=exc_info)


# --- CloudWatch metrics: embedded metric format, one JSON line on stdout -------------

METRICS_NAMESPACE = "SucursalVirtual"  # devtools/infra/alarms.py alarms on this namespace
_metrics_log = logging.getLogger("sucursal.metrics")
_metrics_log.setLevel(logging.INFO)
_metrics_log.propagate = False  # the line must be the whole log event, without a prefix


class _StdoutHandler(logging.Handler):
    """Writes the bare message to the current ``sys.stdout`` (Lambda sends it to CloudWatch Logs,
    which extracts EMF metrics only from log events that are exactly one JSON object)."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


if not _metrics_log.handlers:
    _metrics_log.addHandler(_StdoutHandler())


def emit_metric(name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
    """One EMF line: metric ``name`` in namespace SucursalVirtual with the dimensions ``Stage``
    (the Chalice stage) plus ``dimensions``. Never raises: metrics must not break a payment."""
    try:
        import os
        import time

        stage = os.environ.get("STAGE", "dev")
        dims = {"Stage": stage, **{k: str(v) for k, v in dimensions.items()}}
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [list(dims)],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }],
            },
            **dims,
            name: value,
        }
        _metrics_log.info(json.dumps(record, ensure_ascii=False, default=str))
    except Exception:
        log.exception("metric_failed name=%s", name)
