"""Helpers for the back office tests: approved payments, the export bucket, CSV parsing."""

from __future__ import annotations

import csv
import io
from typing import Any

from chalicelib.services import payments
from tests.payment_support import get_payment, start

BUCKET = "sv-local-files"  # the local stage's bucket when IMPORT_BUCKET is unset


def approved_payment(ctx, gateway, make_obligation, *, document_number: str = "1020304050",  # type: ignore[no-untyped-def]
                     obligations: tuple[tuple[str, int], ...] = (("CR-0001", 150_000),),
                     key: str | None = None):
    """A payment created, approved at the gateway and applied through a status query."""
    for obligation_id, amount in obligations:
        make_obligation(obligation_id, document_number=document_number, amount_due=amount,
                        minimum_amount=min(amount, 50_000), maximum_amount=max(amount, 900_000))
    started = start(ctx, items=list(obligations), key=key or f"k-{document_number}-{obligations[0][0]}",
                    document_number=document_number)
    gateway.settle(started.reference, "APPROVED")
    payments.refresh_payment(ctx, started.id)
    payment = get_payment(started.id)
    assert payment.status == "APPROVED"
    return payment


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def s3_objects(prefix: str = "exports/") -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
    return found


def exported_references(objects: dict[str, bytes]) -> list[str]:
    """Every payment reference in every export file (a payment's rows count once)."""
    references: list[str] = []
    for body in objects.values():
        seen: dict[str, Any] = {}
        for row in parse_csv(body.decode("utf-8")):
            seen.setdefault(row["reference"], row)
        references.extend(seen)
    return references
