"""What EventBridge does in AWS, for ``make run``: start the import of every file put under
``imports/`` of the local bucket (the staff console's uploads, ``aws s3 cp``...).

Every few seconds the bucket's ``imports/`` prefix is listed; a file without its
``.report.json`` under ``reports/`` is imported in this process by the same code as the
``import_from_s3`` Lambda (``import_jobs.handle_event`` with an "Object Created" event).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class DropFolderWatcher:
    """``run_once`` imports what is new; the local runner calls it every few seconds."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._failed: set[tuple[str, str]] = set()  # (key, etag) that failed: not retried in a loop

    def run_once(self) -> list[dict[str, Any]]:
        from chalicelib.adapters.s3 import s3_client
        from chalicelib.config import get_settings
        from chalicelib.services import import_jobs

        settings = get_settings()
        s3 = s3_client(settings)
        done = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                   Prefix=import_jobs.IMPORTS_PREFIX):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj.get("ETag", "")
                if key.endswith("/") or (key, etag) in self._failed:
                    continue
                _, report = import_jobs.report_keys(key)
                if "Contents" in s3.list_objects_v2(Bucket=self.bucket, Prefix=report, MaxKeys=1):
                    continue
                event = {"source": "aws.s3", "detail-type": "Object Created",
                         "detail": {"bucket": {"name": self.bucket}, "object": {"key": key}}}
                try:
                    done.append(import_jobs.handle_event(event, settings, now=datetime.now(UTC), s3=s3))
                except Exception as exc:
                    self._failed.add((key, etag))
                    print(f"[drop-folder] la importación de {key} falló: {exc!r}", flush=True)
        return done
