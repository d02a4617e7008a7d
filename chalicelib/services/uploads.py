"""Uploads of the core system's files from the staff console, straight into the S3 drop folder.

The browser posts the file to S3 with a presigned POST (no JavaScript, no CORS, nothing through
the Lambda and its 6 MB payload limit). The key is chosen here, under the folder that names the
import (``imports/members/`` or ``imports/obligations/``, ``-parcial`` for a partial obligations
file), so the import the bucket's event starts (:mod:`chalicelib.services.import_jobs`) knows what
it holds; its report appears under ``reports/`` and the console reads it from there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters.s3 import get_object, list_objects, object_exists, s3_client
from chalicelib.config import COLOMBIA
from chalicelib.context import Context
from chalicelib.domain.errors import InvalidInput
from chalicelib.services import exports, import_jobs

KINDS = {"members": "Asociados (members.csv)", "obligations": "Obligaciones, archivo completo",
         "obligations-parcial": "Obligaciones, novedades (parcial: no cierra ninguna)"}
MAX_BYTES = 200 * 1024 * 1024
FORM_SECONDS = 900
HISTORY = 15
_KEY = re.compile(r"imports/(members|obligations)/[0-9]{8}-[0-9]{6}-[a-z0-9]{6}(-parcial)?\.csv")
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class UploadForm:
    url: str
    fields: dict[str, str]
    key: str


def upload_form(ctx: Context, kind: str, *, redirect_url: str) -> UploadForm:
    """A presigned POST for one new key of ``kind`` (15 minutes, up to 200 MB)."""
    if kind not in KINDS:
        raise InvalidInput("Elija qué archivo va a cargar.", field="kind")
    folder, _, partial = kind.partition("-")
    stamp = ctx.now().astimezone(COLOMBIA).strftime("%Y%m%d-%H%M%S")
    key = f"imports/{folder}/{stamp}-{ctx.random_code(6, _ALPHABET)}{'-parcial' if partial else ''}.csv"
    s3 = s3_client(ctx.settings)
    post = s3.generate_presigned_post(
        Bucket=exports.bucket_name(ctx.settings), Key=key,
        Fields={"success_action_redirect": redirect_url},
        Conditions=[["content-length-range", 1, MAX_BYTES], {"success_action_redirect": redirect_url}],
        ExpiresIn=FORM_SECONDS)
    return UploadForm(url=post["url"], fields=dict(post["fields"]), key=key)


def parse_key(raw: object) -> str:
    if not isinstance(raw, str) or not _KEY.fullmatch(raw):
        raise InvalidInput("El archivo indicado no es una carga de la consola.", field="key")
    return raw


@dataclass(frozen=True)
class UploadStatus:
    key: str
    uploaded: bool
    report: dict[str, Any] | None  # the import's .report.json once written

    @property
    def done(self) -> bool:
        return self.report is not None


def upload_status(ctx: Context, key: str) -> UploadStatus:
    """Uploaded? Imported? Two S3 calls at most (GetObject of its report, HeadObject of the file)."""
    s3 = s3_client(ctx.settings)
    bucket = exports.bucket_name(ctx.settings)
    _, report_key = import_jobs.report_keys(key)
    report = get_object(s3, bucket, report_key)
    if report is not None:
        return UploadStatus(key, True, json.loads(report["Body"].read()))
    return UploadStatus(key, object_exists(s3, bucket, key), None)


@dataclass(frozen=True)
class PastImport:
    key: str  # the report's .json key
    at: datetime
    report: dict[str, Any]


def history(ctx: Context, *, limit: int = HISTORY) -> list[PastImport]:
    """The newest import reports (``reports/``, kept ImportRetentionDays: a bounded listing)."""
    s3 = s3_client(ctx.settings)
    bucket = exports.bucket_name(ctx.settings)
    found = [(at, key) for at, key in list_objects(s3, bucket, import_jobs.REPORTS_PREFIX)
             if key.endswith(".report.json")]
    past = []
    for at, key in sorted(found, reverse=True)[:limit]:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        past.append(PastImport(key, at, report))
    return past
