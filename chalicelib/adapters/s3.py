"""S3 for the drop folder and its reports: the client, and an absent object or bucket as a plain
answer (botocore's error codes stay here). boto3 and botocore are imported on first use, off the
cold-start path of the other functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.config import Settings

MISSING = ("NoSuchKey", "404")


def s3_client(settings: Settings) -> Any:
    import boto3

    return boto3.client("s3", region_name=settings.region)


def _error_code(exc: Exception) -> str | None:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return str(code) if code is not None else None


def get_object(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """``GetObject``'s answer (its ``Body`` streams), or None when there is no such key."""
    from botocore.exceptions import ClientError

    try:
        answer: dict[str, Any] = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _error_code(exc) not in MISSING:
            raise
        return None
    return answer


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _error_code(exc) not in MISSING:
            raise
        return False
    return True


def list_objects(s3: Any, bucket: str, prefix: str) -> list[tuple[datetime, str]]:
    """``(LastModified, Key)`` of every object under ``prefix``; none when the bucket is missing."""
    from botocore.exceptions import ClientError

    found: list[tuple[datetime, str]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [(o["LastModified"], o["Key"]) for o in page.get("Contents", [])]
    except ClientError as exc:
        if _error_code(exc) != "NoSuchBucket":
            raise
        return []
    return found
