"""Export of approved payments for the core system (SPEC §4), daily and on demand.

Exactly once: the transaction that applies an approval also sets ``Payment.export_pending``, which
puts the payment in the sparse ``export_queue`` index. An export reads that index (never a scan)
and claims each payment with one conditional write (``export_pending`` exists → remove it, set
``exported_at`` and ``export_id``); only one export can win that write, so two exports running at
the same time split the payments between them and never share one.

Crash safety: the export record is written OPEN (with a lease) before any claim and marked
COMPLETE after the file is in S3. An export that died in between keeps its claimed payments (they
carry its ``export_id``, index ``by_export``); the next export run, once the lease (longer than a
Lambda can live) has run out, rebuilds that export's file from them and completes it. So a claimed
payment always ends up in exactly one file.

File (documented in the README, "Back office"): UTF-8 without BOM, ``;`` delimited, CRLF line
ends, a header row, one row per (payment, obligation paid), oldest approval first; cells written
by :mod:`chalicelib.security.spreadsheet` (never a formula to a spreadsheet). Written to
``s3://{IMPORT_BUCKET}/exports/YYYY/MM/DD/pagos-aprobados-<export_id>.csv`` (Colombian date of
the export).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from chalicelib.adapters.dynamo import backoffice_repo as repo
from chalicelib.adapters.dynamo.models import Export, Payment
from chalicelib.config import COLOMBIA, ConfigError, Settings
from chalicelib.context import Context, Runtime
from chalicelib.domain.payments import EXPORT_READY
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.security.spreadsheet import Cell, CsvWriter
from chalicelib.services.audit import audit_item

COLUMNS = ("export_id", "reference", "cus", "approved_at", "document_type", "document_number",
           "full_name", "obligation_id", "obligation_type", "product_number", "amount",
           "payment_total", "bank_name", "gateway", "gateway_id")
DELIMITER = ";"
LINE_END = "\r\n"
CONTENT_TYPE = "text/csv; charset=utf-8"
SCHEDULE_ACTOR = "system:schedule"
#: An OPEN export may be finished by another run only after this: longer than any Lambda lives
#: (15 min at most), so the process that opened it is surely gone.
LEASE = timedelta(minutes=20)
#: Payments per file; the rest waits for the next export (a Lambda's time is bounded).
MAX_PAYMENTS = 20_000
#: Seconds spent claiming before the file is written: the schedule's Lambda has Chalice's default
#: 60 s timeout, an on-demand export answers through API Gateway (29 s). What is left waits.
SCHEDULE_CLAIM_SECONDS = 40.0
API_CLAIM_SECONDS = 20.0
QUEUE_PAGE = 100
_SUFFIX_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
DOWNLOAD_URL_SECONDS = 900


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    key: str
    rows: int
    csv_text: str
    payments: int = 0
    total_amount: int = 0
    bucket: str = ""


# --- the file (pure) ----------------------------------------------------------------------------

def new_export_id(now: datetime, suffix: str) -> str:
    """``20261124-060000-k3m9xq``: sortable, readable, and unique with its random suffix."""
    return f"{now.astimezone(COLOMBIA):%Y%m%d-%H%M%S}-{suffix}"


def export_key(export_id: str, created_at: datetime) -> str:
    day = created_at.astimezone(COLOMBIA)
    return f"exports/{day:%Y/%m/%d}/pagos-aprobados-{export_id}.csv"


def payment_rows(export_id: str, payment: Payment) -> list[list[Cell]]:
    """The CSV rows of one payment: one per obligation it paid (an item of 0 pesos has none)."""
    common: dict[str, Cell] = {
        "export_id": export_id,
        "reference": payment.reference,
        "cus": payment.cus or "",
        "approved_at": iso(payment.approved_at) or "",
        "document_type": payment.document_type or "",
        "document_number": payment.document_number,
        "full_name": payment.payer_name or "",
        "payment_total": int(payment.amount),
        "bank_name": payment.bank_name or "",
        "gateway": payment.gateway or "",
        "gateway_id": payment.gateway_id or "",
    }
    rows = []
    for item in payment.items or []:
        if int(item.amount) <= 0:
            continue
        values = {**common, "obligation_id": item.obligation_id, "obligation_type": item.type,
                  "product_number": item.product_number, "amount": int(item.amount)}
        rows.append([values[c] for c in COLUMNS])
    return rows


@dataclass
class CsvBuilder:
    """The file, built as payments are claimed (only the text is kept, not the items)."""

    export_id: str
    rows: int = 0
    payments: int = 0
    total_amount: int = 0
    _buffer: io.StringIO = field(default_factory=io.StringIO)
    _writer: Any = None

    def __post_init__(self) -> None:
        self._writer = CsvWriter(self._buffer, delimiter=DELIMITER, line_end=LINE_END)
        self._writer.writerow(COLUMNS)

    def add(self, payment: Payment) -> None:
        rows = payment_rows(self.export_id, payment)
        self._writer.writerows(rows)
        self.rows += len(rows)
        self.payments += 1
        self.total_amount += int(payment.amount)

    def text(self) -> str:
        return self._buffer.getvalue()


def render_csv(export_id: str, payments: Iterable[Payment]) -> str:
    builder = CsvBuilder(export_id)
    for payment in payments:
        builder.add(payment)
    return builder.text()


# --- S3 -----------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _s3(region: str) -> Any:
    import boto3  # lazy: off the cold-start path

    return boto3.client("s3", region_name=region)


def bucket_name(settings: Settings) -> str:
    """IMPORT_BUCKET; in the local stage, when unset, ``{TABLE_PREFIX}-files`` (made on first use)."""
    if settings.import_bucket:
        return settings.import_bucket
    if settings.stage == "local":
        return f"{settings.table_prefix}-files"
    raise ConfigError("IMPORT_BUCKET is not set: the export has nowhere to write")


def _put(settings: Settings, key: str, body: bytes, metadata: dict[str, str]) -> str:
    from botocore.exceptions import ClientError

    s3, bucket = _s3(settings.region), bucket_name(settings)
    request = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": CONTENT_TYPE,
               "Metadata": metadata}
    try:
        s3.put_object(**request)
    except ClientError as exc:
        # Only the local stage (moto) may lack the bucket; in AWS the stack creates it, and the
        # Lambda role is not allowed to create buckets.
        if settings.stage != "local" or exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
        _create_local_bucket(s3, bucket, settings.region)
        s3.put_object(**request)
    return bucket


def _create_local_bucket(s3: Any, bucket: str, region: str) -> None:
    options = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **options)
    log_event("export_local_bucket_created", bucket=bucket)


def download_url(settings: Settings, key: str) -> str | None:
    """A presigned GET for staff (15 minutes; signed locally, no AWS call)."""
    try:
        return _s3(settings.region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket_name(settings), "Key": key},
            ExpiresIn=DOWNLOAD_URL_SECONDS)
    except Exception:
        return None


# --- exporting ----------------------------------------------------------------------------------

def export_approved(ctx: Context, *, now: datetime, requested_by: str,
                    claim_seconds: float = SCHEDULE_CLAIM_SECONDS) -> ExportResult:
    """Claim every approved payment not exported yet and write them to one CSV in S3.

    Round trips: one Query on the open-exports index (crash recovery; normally empty), one
    PutItem (the export, OPEN), one Query per 100 queued payments and one conditional UpdateItem
    per payment (the claim), the S3 PutObject, one UpdateItem (COMPLETE), one PutItem (audit)."""
    finish_stale_exports(ctx, now=now)
    export_id = new_export_id(now, ctx.random_code(6, _SUFFIX_ALPHABET))
    record = Export(export_id=export_id, status=repo.OPEN, open_flag=repo.OPEN, created_at=now,
                    requested_by=requested_by, lease_until=now + LEASE, rows=0, payments=0,
                    total_amount=0)
    repo.create_export(record)
    builder = CsvBuilder(export_id)
    deadline = Runtime.monotonic() + claim_seconds
    for candidate in repo.export_candidates(EXPORT_READY, page_size=QUEUE_PAGE):
        if builder.payments >= MAX_PAYMENTS or Runtime.monotonic() >= deadline:
            log_event("export_truncated", level=30, export_id=export_id, payments=builder.payments)
            break
        claimed = repo.claim_for_export(candidate.payment_id, export_id=export_id, now=now)
        if claimed is not None:  # None: another export won it
            builder.add(claimed)
    return _finish(ctx, record, builder, requested_by=requested_by)


def finish_stale_exports(ctx: Context, *, now: datetime) -> list[ExportResult]:
    """Complete exports a crash left OPEN (lease run out): rebuild their file from their claims."""
    finished: list[ExportResult] = []
    for record in repo.open_exports(older_than=now - LEASE + timedelta(seconds=1)):
        if record.lease_until is not None and record.lease_until >= now:
            continue
        if not repo.take_lease(record, now=now, until=now + LEASE):
            continue
        try:
            builder = CsvBuilder(record.export_id)
            for payment in repo.payments_of_export(record.export_id):
                builder.add(payment)
            finished.append(_finish(ctx, record, builder, requested_by=record.requested_by,
                                    resumed=True))
        except Exception:
            log_event("export_resume_failed", level=40, export_id=record.export_id)
    return finished


def _finish(ctx: Context, record: Export, builder: CsvBuilder, *, requested_by: str,
            resumed: bool = False) -> ExportResult:
    key = export_key(record.export_id, record.created_at)
    text = builder.text()
    bucket = _put(ctx.settings, key, text.encode("utf-8"), {
        "export-id": record.export_id, "rows": str(builder.rows), "payments": str(builder.payments),
        "total-amount": str(builder.total_amount)})
    done = repo.complete_export(record, key=key, rows=builder.rows, payments=builder.payments,
                                total_amount=builder.total_amount, now=ctx.now())
    if not done:  # finished by a resumer meanwhile (only if this run outlived the lease)
        log_event("export_completed_elsewhere", level=40, export_id=record.export_id)
    audit_item(ctx, subject="system", event="payments_exported", actor=requested_by,
               export_id=record.export_id, key=key, rows=builder.rows, payments=builder.payments,
               total_amount=builder.total_amount, resumed=resumed).save()
    return ExportResult(export_id=record.export_id, key=key, rows=builder.rows, csv_text=text,
                        payments=builder.payments, total_amount=builder.total_amount, bucket=bucket)


def get_export(export_id: str) -> Export | None:
    return repo.get_export(export_id) if _looks_like_id(export_id) else None


def _looks_like_id(value: object) -> bool:
    return isinstance(value, str) and 8 <= len(value) <= 40 and all(
        c in "0123456789-" or c in _SUFFIX_ALPHABET for c in value)


# --- the hook for the core system's import ("aplicado en la cooperativa") -------------------------

def known_to_core(payment_ids: Sequence[str], *, cutoff: datetime) -> set[str]:
    """Which of these portal payments the core system can know at ``cutoff``: those an export had
    claimed by then. The obligations import should drop a ``portal_payments`` entry (and stop
    subtracting it from the file's balance) only for these: a payment approved before the cut-off
    but exported after it is NOT in the core's balance yet. One BatchGetItem per 100 ids."""
    return repo.exported_before(payment_ids, cutoff)


def confirm_applied_in_core(ctx: Context, payment_ids: Iterable[str], *, cutoff: datetime) -> int:
    """The import's confirmation: the core's file (cut at ``cutoff``) reflects these exported
    payments. Sets ``Payment.core_applied_at`` once (conditional: exported at or before the
    cut-off, not confirmed yet); the member then sees "Aplicado en la cooperativa". Returns how
    many were newly confirmed. One UpdateItem per payment."""
    now = ctx.now()
    confirmed = 0
    for payment_id in dict.fromkeys(payment_ids):
        if repo.mark_applied_in_core(payment_id, cutoff=cutoff, now=now):
            confirmed += 1
    if confirmed:
        log_event("payments_applied_in_core", confirmed=confirmed, cutoff=cutoff)
    return confirmed
