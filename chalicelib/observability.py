"""Structured JSON logs. Document numbers are masked; secrets are never passed here."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from chalicelib.domain.members import mask_document

log = logging.getLogger("sucursal")
log.setLevel(logging.INFO)

_FORBIDDEN = frozenset({"password", "new_password", "temporary_key", "token", "session", "secret"})


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One JSON line: ``event`` in OWASP logging-vocabulary terms where one applies."""
    record: dict[str, Any] = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                              "event": event}
    for key, value in fields.items():
        if key in _FORBIDDEN:
            continue
        if key == "document_number" and isinstance(value, str):
            value = mask_document(value)
        record[key] = value
    log.log(level, json.dumps(record, ensure_ascii=False, default=str))
