"""Export files in S3: written once, listed by month for the console, downloaded by presigned URL
(botocore's error codes stay here and in :mod:`chalicelib.adapters.s3`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.adapters.s3 import list_objects
from chalicelib.observability import log_event

DOWNLOAD_URL_SECONDS = 900


@lru_cache(maxsize=4)
def client(region: str) -> Any:
    import boto3  # lazy: off the cold-start path

    return boto3.client("s3", region_name=region)


def put(region: str, bucket: str, key: str, body: bytes, *, content_type: str,
        metadata: dict[str, str], create_bucket: bool = False) -> None:
    """Store the file; ``create_bucket`` (the local stage only: in AWS the stack creates it, and
    the Lambda role may not) makes a missing bucket first."""
    from botocore.exceptions import ClientError  # lazy, like boto3

    s3 = client(region)
    request = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": content_type,
               "Metadata": metadata}
    try:
        s3.put_object(**request)
    except ClientError as exc:
        if not (create_bucket and exc.response.get("Error", {}).get("Code") == "NoSuchBucket"):
            raise
        options = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **options)
        log_event("export_local_bucket_created", bucket=bucket)
        s3.put_object(**request)


def keys(region: str, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (none when the bucket does not exist yet)."""
    return [key for _, key in list_objects(client(region), bucket, prefix)]


def download_url(region: str, bucket: str, key: str) -> str | None:
    """A presigned GET for staff (15 minutes; signed locally, no AWS call)."""
    try:
        url: str = client(region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=DOWNLOAD_URL_SECONDS)
    except Exception:
        return None
    return url
