"""The S3 drop folder (SPEC §4): a core-system file put under ``imports/`` is imported and its
report is written next to it under ``reports/``.

In AWS, the bucket sends its object-created events to EventBridge and a rule starts the
``import_from_s3`` Lambda (``app.py``; ``chalice package`` refuses ``@app.on_s3_event`` for
CloudFormation). Locally, ``python -m devtools.import_cli s3://bucket/imports/...`` runs this same
code against the local moto server.

Which import, from the object's key (case-insensitive), in this order:

* a folder: ``imports/members/<name>.csv`` → members; ``imports/obligations/<name>.csv`` →
  obligations;
* else the file name: ``members*.csv`` or ``asociados*.csv`` → members; ``obligations*.csv`` or
  ``obligaciones*.csv`` → obligations;
* an obligations file is a *full* file (the OPEN obligations it does not list are closed) unless
  its name contains ``parcial`` or ``partial``;
* anything else (another name, not ``.csv``) is not imported; its report says why.

The object is streamed (``GetObject``'s body is read in 64 KiB chunks, never whole), so a file of
100,000 rows needs no more memory than one of 100. The report goes to ``reports/<the key after
imports/>.report.txt`` (the Spanish summary and every rejected line with its reason) and
``.report.json`` (the same as data). The same file imported again changes nothing, so a repeated
event (EventBridge delivers at least once) is harmless.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

from chalicelib.adapters.s3 import get_object
from chalicelib.adapters.s3 import s3_client as s3_client  # re-exported: the console's client
from chalicelib.config import Settings
from chalicelib.context import Context, get_context
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.services.imports import ImportBusy, ImportReport, import_members, import_obligations

IMPORTS_PREFIX = "imports/"
REPORTS_PREFIX = "reports/"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
BUSY_WAIT_SECONDS = 300  # the Lambda waits this long for another obligations import to end
BUSY_POLL_SECONDS = 15


@dataclass(frozen=True)
class FileKind:
    kind: str | None  # members | obligations | None (not recognized)
    full: bool = True  # obligations: a full file (closes the absent ones)
    reason: str = ""  # why it is not recognized, in Spanish


@dataclass(frozen=True)
class S3ImportResult:
    bucket: str
    key: str
    report: ImportReport | None  # None: the name was not recognized
    report_text_key: str
    report_json_key: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"bucket": self.bucket, "key": self.key,
                                   "report": self.report_text_key}
        if self.report is not None:
            summary.update(kind=self.report.kind, batch_id=self.report.batch_id,
                           exit_code=self.report.exit_code, **self.report.counts())
        else:
            summary.update(kind=None, exit_code=2)
        return summary


def kind_of(key: str) -> FileKind:
    """What the file under ``imports/`` holds, from its key (see the module docstring)."""
    relative = key[len(IMPORTS_PREFIX):] if key.startswith(IMPORTS_PREFIX) else key
    lowered = relative.lower()
    name = posixpath.basename(lowered)
    if not name.endswith(".csv"):
        return FileKind(None, reason="solo se importan archivos .csv")
    folder = lowered.split("/", 1)[0] if "/" in lowered else ""
    partial = "parcial" in name or "partial" in name
    if folder == "members" or (not folder and name.startswith(("members", "asociados"))):
        return FileKind("members")
    if folder == "obligations" or (not folder and name.startswith(("obligations", "obligaciones"))):
        return FileKind("obligations", full=not partial)
    return FileKind(None, reason="el nombre no indica el tipo de archivo: use members*.csv u "
                                 "obligations*.csv (o las carpetas imports/members/ e "
                                 "imports/obligations/)")


def report_keys(key: str) -> tuple[str, str]:
    """``imports/a/b.csv`` → ``reports/a/b.csv.report.txt`` and ``.report.json``."""
    relative = key[len(IMPORTS_PREFIX):] if key.startswith(IMPORTS_PREFIX) else key
    base = f"{REPORTS_PREFIX}{relative}"
    return f"{base}.report.txt", f"{base}.report.json"


def open_object(s3: Any, bucket: str, key: str) -> tuple[str, dict[str, Any]]:
    """``(key, GetObject answer)``; an event's key may come URL-encoded, so its decodings are
    tried when the key as given does not exist."""
    for candidate in dict.fromkeys([key, unquote(key), unquote_plus(key)]):
        answer = get_object(s3, bucket, candidate)
        if answer is not None:
            return candidate, answer
    raise FileNotFoundError(f"s3://{bucket}/{key} no existe")


def import_s3_object(bucket: str, key: str, *, now: datetime, s3: Any,
                     progress: Callable[[int], None] | None = None, force_close: bool = False,
                     busy_wait_seconds: float = 0, ctx: Context | None = None) -> S3ImportResult:
    """Import ``s3://bucket/key`` (streamed) and write its report next to it; see the module.

    Raises ImportBusy when another obligations import still runs after ``busy_wait_seconds``
    (nothing was written: the caller retries), FileNotFoundError when the object is gone."""
    kind = kind_of(key)
    if kind.kind is None:
        text_key, json_key = report_keys(key)
        source = f"s3://{bucket}/{key}"
        text = (f"Archivo: {source}\nNo se importó: {kind.reason}.\n")
        _put(s3, bucket, text_key, text.encode("utf-8"), TEXT_TYPE)
        _put(s3, bucket, json_key, _json({"source": source, "kind": None, "ok": False,
                                          "exit_code": 2, "file_error": kind.reason,
                                          "processed_at": iso(now)}), JSON_TYPE)
        log_event("import_s3_unrecognized", level=30, bucket=bucket, key=key)
        return S3ImportResult(bucket, key, None, text_key, json_key, text)

    ctx = ctx or get_context()
    waited = 0.0
    while True:
        key, answer = open_object(s3, bucket, key)
        source = f"s3://{bucket}/{key}"
        body = answer["Body"]  # botocore StreamingBody: read(n) pulls from the connection
        try:
            if kind.kind == "members":
                report = import_members(body, now=now, progress=progress, source=source, ctx=ctx)
            else:
                report = import_obligations(body, now=now, progress=progress, full=kind.full,
                                            force_close=force_close, source=source, ctx=ctx)
            break
        except ImportBusy:
            if waited >= busy_wait_seconds:
                raise
        finally:
            body.close()
        ctx.sleep(BUSY_POLL_SECONDS)
        waited += BUSY_POLL_SECONDS

    text_key, json_key = report_keys(key)
    header = [f"Archivo: {source} ({answer.get('ContentLength', '?')} bytes)",
              f"Procesado: {iso(now)}", ""]
    text = "\n".join(header) + report.to_text() + "\n"
    _put(s3, bucket, text_key, text.encode("utf-8"), TEXT_TYPE)
    _put(s3, bucket, json_key, _json({**report.to_json(), "bucket": bucket, "key": key,
                                      "size": answer.get("ContentLength"),
                                      "etag": answer.get("ETag"), "processed_at": iso(now),
                                      "report_text_key": text_key}), JSON_TYPE)
    log_event("import_s3_done", bucket=bucket, key=key, report=text_key, kind=report.kind,
              batch_id=report.batch_id, exit_code=report.exit_code)
    return S3ImportResult(bucket, key, report, text_key, json_key, text)


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def _put(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


# --- the EventBridge event ----------------------------------------------------------------------

def handle_event(event: dict[str, Any], settings: Settings, *, now: datetime,
                 s3: Any | None = None) -> dict[str, Any]:
    """An EventBridge "Object Created" event of the import bucket (``app.import_from_s3``).

    The rule matches the bucket (the merge template puts its name in the pattern) and the
    ``imports/`` prefix; both are checked again here, so a rule left broader imports nothing else.
    """
    detail = event.get("detail") or {}
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    key = str((detail.get("object") or {}).get("key") or "")
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        log_event("import_s3_ignored", level=30, reason="not an object-created event")
        return {"ignored": "not an object-created event"}
    if settings.import_bucket and bucket != settings.import_bucket:
        log_event("import_s3_ignored", level=30, reason="other bucket", bucket=bucket)
        return {"ignored": "other bucket"}
    if not key.startswith(IMPORTS_PREFIX) or key.endswith("/"):
        log_event("import_s3_ignored", level=30, reason="not a file under imports/", key=key)
        return {"ignored": "not a file under imports/"}
    try:
        result = import_s3_object(bucket, key, now=now, s3=s3 or s3_client(settings),
                                  busy_wait_seconds=BUSY_WAIT_SECONDS)
    except FileNotFoundError:  # deleted before its turn came: nothing to import, nothing to retry
        log_event("import_s3_ignored", level=30, reason="object not found", key=key)
        return {"ignored": "object not found"}
    return result.as_dict()
