"""The staff side of the back office (issue 4): payment search, a member's audit trail, blocking.

Searches go through an index chosen by the filters (never a scan):

=====================  ==================================  =================================
filters given           index (key condition)               other filters
=====================  ==================================  =================================
reference               by_reference (reference)            status, document, dates: filter
cus                     by_cus (cus)                        status, document, dates: filter
document                by_member (document, created_at)    status: filter
status                  by_status (status, created_at)      —
=====================  ==================================  =================================

Dates are Colombian days (``YYYY-MM-DD``, both ends included) turned into a ``created_at`` range.
Pages are cut with an opaque cursor: the index's resume key, signed (HMAC, purpose
``staff-cursor``) together with a digest of the filters, so a cursor cannot be forged nor reused
with another search.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from chalicelib.adapters.dynamo import backoffice_repo as repo
from chalicelib.adapters.dynamo import repositories
from chalicelib.adapters.dynamo.models import AuditEvent, Member, Payment
from chalicelib.config import COLOMBIA
from chalicelib.context import Context
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.members import parse_document_number
from chalicelib.domain.payments import STATUSES, is_reference
from chalicelib.observability import log_event
from chalicelib.security.signing import BadSignature
from chalicelib.services.audit import audit_item

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_SECONDS = 24 * 3600
MAX_DAYS = 366
REASON_MIN, REASON_MAX = 3, 500
SEARCH_PARAMS = ("reference", "cus", "document", "status", "from", "to", "cursor", "limit")
_CUS = re.compile(r"[A-Za-z0-9._-]{1,64}")

MEMBER_NOT_FOUND = "No existe un asociado con ese número de documento."


@dataclass(frozen=True)
class PageOf:
    items: list[Any]
    next_cursor: str | None


# --- parameters ----------------------------------------------------------------------------------

def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"«limit» debe ser un entero entre 1 y {MAX_LIMIT}.", code="invalid_limit",
                           field="limit")
    return int(raw)


def parse_day(raw: str, name: str) -> date:
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"«{name}» debe ser una fecha AAAA-MM-DD válida (día de Colombia).",
                           code="invalid_date", field=name) from None


def day_range(start: date | None, end: date | None) -> tuple[datetime, datetime] | None:
    """Colombian days ``start``..``end`` (both included) as an aware UTC ``created_at`` range."""
    if start is None and end is None:
        return None
    if start is not None and end is not None and start > end:
        raise InvalidInput("«from» no puede ser posterior a «to».", code="invalid_date_range",
                           field="from")
    if start is not None and end is not None and (end - start).days >= MAX_DAYS:
        raise InvalidInput(f"El rango de fechas no puede pasar de {MAX_DAYS} días.",
                           code="invalid_date_range", field="to")
    low = datetime.combine(start or date(2000, 1, 1), time.min, tzinfo=COLOMBIA)
    high = datetime.combine((end or date(2999, 12, 31)) + timedelta(days=1), time.min, tzinfo=COLOMBIA)
    return low, high - timedelta(microseconds=1)


def parse_reason(raw: object, *, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not REASON_MIN <= len(raw.strip()) <= REASON_MAX:
        raise InvalidInput(f"Indique «reason»: un texto de {REASON_MIN} a {REASON_MAX} caracteres.",
                           code="invalid_reason", field="reason")
    return raw.strip()


def parse_document(raw: object, name: str = "document") -> str:
    try:
        return parse_document_number(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"«{name}»: {exc.message}", code="invalid_document", field=name) from None


@dataclass(frozen=True)
class Search:
    reference: str | None = None
    cus: str | None = None
    document: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def digest(self) -> str:
        """What a cursor is bound to: the filters, not the page size."""
        key = [self.reference, self.cus, self.document, self.status,
               self.start.isoformat() if self.start else None, self.end.isoformat() if self.end else None]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def parse_search(params: Mapping[str, str]) -> Search:
    """Query-string parameters → a :class:`Search`; a precise 400 for anything wrong."""
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise InvalidInput(f"Parámetro desconocido: {', '.join(unknown)}. Use: {', '.join(SEARCH_PARAMS)}.",
                           code="unknown_parameter", field=unknown[0])
    values = {k: (v or "").strip() for k, v in params.items()}
    reference = values.get("reference") or None
    if reference is not None:
        reference = reference.upper()
        if not is_reference(reference):
            raise InvalidInput("«reference» no tiene el formato de una referencia de pago (SV y 12 "
                               "caracteres).", code="invalid_reference", field="reference")
    cus = values.get("cus") or None
    if cus is not None and not _CUS.fullmatch(cus):
        raise InvalidInput("«cus» debe tener de 1 a 64 letras, dígitos, punto, guion o guion bajo.",
                           code="invalid_cus", field="cus")
    document = parse_document(values["document"]) if values.get("document") else None
    status = values.get("status") or None
    if status is not None:
        status = status.upper()
        if status not in STATUSES:
            raise InvalidInput(f"«status» debe ser uno de: {', '.join(STATUSES)}.",
                               code="invalid_status", field="status")
    start = parse_day(values["from"], "from") if values.get("from") else None
    end = parse_day(values["to"], "to") if values.get("to") else None
    day_range(start, end)  # validates the order and span
    if not (reference or cus or document or status):
        raise InvalidInput("Indique al menos uno de: reference, cus, document o status (las fechas "
                           "from/to acotan una búsqueda por document o status).",
                           code="missing_filter")
    return Search(reference=reference, cus=cus, document=document, status=status, start=start,
                  end=end, limit=parse_limit(values.get("limit")), cursor=values.get("cursor") or None)


# --- cursors ---------------------------------------------------------------------------------------

def _cursor_out(ctx: Context, resume: repo.ResumeKey | None, bound: str) -> str | None:
    if resume is None:
        return None
    expires = int(ctx.now().timestamp()) + CURSOR_SECONDS
    return ctx.signer("staff-cursor").sign({"k": resume, "q": bound}, expires_at=expires)


def _cursor_in(ctx: Context, cursor: str | None, bound: str) -> repo.ResumeKey | None:
    if cursor is None:
        return None
    try:
        payload = ctx.signer("staff-cursor").unsign(cursor, now=int(ctx.now().timestamp()))
    except BadSignature:
        raise InvalidInput("«cursor» no es válido o venció; repita la búsqueda desde la primera "
                           "página.", code="invalid_cursor", field="cursor") from None
    if payload.get("q") != bound or not isinstance(payload.get("k"), dict):
        raise InvalidInput("«cursor» pertenece a otra búsqueda; repita la búsqueda desde la primera "
                           "página.", code="invalid_cursor", field="cursor")
    return payload["k"]


# --- searching payments ------------------------------------------------------------------------------

def search_payments(ctx: Context, search: Search, *, actor: str) -> PageOf:
    """One page of payments for staff, through the index the filters select (see module doc)."""
    bound = search.digest()
    start = _cursor_in(ctx, search.cursor, bound)
    created = day_range(search.start, search.end)
    between = Payment.created_at.between(*created) if created else None
    filters: list[Any] = []
    range_condition = None
    if search.reference or search.cus:
        index = "by_reference" if search.reference else "by_cus"
        hash_key = search.reference or search.cus
        if search.reference and search.cus:
            filters.append(Payment.cus == search.cus)
        if search.document:
            filters.append(Payment.document_number == search.document)
        if search.status:
            filters.append(Payment.status == search.status)
        if between is not None:
            filters.append(between)
    elif search.document:
        index, hash_key = "by_member", search.document
        range_condition = between
        if search.status:
            filters.append(Payment.status == search.status)
    else:
        index, hash_key = "by_status", search.status
        range_condition = between
    condition = None
    for f in filters:
        condition = f if condition is None else condition & f
    page = repo.payments_page(index, hash_key, range_condition=range_condition,  # type: ignore[arg-type]
                              filter_condition=condition, limit=search.limit, start=start)
    log_event("sensitive_read", what="payment_search", actor=actor, index=index,
              results=len(page.items), document_number=search.document)
    return PageOf(page.items, _cursor_out(ctx, page.resume_key, bound))


def review_queue(ctx: Context, *, limit: int, cursor: str | None) -> PageOf:
    """Payments flagged for review, oldest first (the sparse review index, one Query a page)."""
    from chalicelib.domain.payments import REVIEW_FLAG

    start = _cursor_in(ctx, cursor, "review")
    page = repo.payments_page("review", REVIEW_FLAG, newest_first=False, limit=limit, start=start)
    return PageOf(page.items, _cursor_out(ctx, page.resume_key, "review"))


# --- members ---------------------------------------------------------------------------------------

def member_audit(ctx: Context, document_number: str, *, limit: int, cursor: str | None,
                 actor: str) -> PageOf:
    """A member's security and payment audit trail, newest first (one Query a page)."""
    bound = f"audit:{document_number}"
    start = _cursor_in(ctx, cursor, bound)
    page = repo.audit_page(document_number, limit=limit, start=start)
    log_event("sensitive_read", what="member_audit", actor=actor, document_number=document_number,
              results=len(page.items))
    return PageOf(page.items, _cursor_out(ctx, page.resume_key, bound))


@dataclass(frozen=True)
class BlockResult:
    member: Member
    changed: bool
    sessions_ended: int


def set_blocked(ctx: Context, document_number: str, *, blocked: bool, reason: str, actor: str,
                ip: str | None) -> BlockResult:
    """Block or unblock a member in the portal (the core system's status is not touched).

    The change and its audit event are one transaction; blocking then ends every session of the
    member, so the next request of any of them is signed out, and login answers the generic
    refusal. Round trips: GetItem, the transaction, then (block) one Query + one BatchWriteItem."""
    member = repo.get_member(document_number)
    if member is None:
        raise NotFound(MEMBER_NOT_FOUND, code="member_not_found")
    changed = bool(member.portal_blocked) != blocked
    now = ctx.now()
    event = "staff_member_blocked" if blocked else "staff_member_unblocked"
    audit = audit_item(ctx, subject=document_number, event=event, actor=actor, ip=ip, reason=reason,
                       changed=changed)
    try:
        repositories.transact(
            updates=[(member, [Member.portal_blocked.set(blocked), Member.updated_at.set(now)],
                      Member.document_number.exists())],
            saves=[audit])
    except repositories.ConcurrentUpdate as exc:
        raise Conflict("El asociado cambió mientras se procesaba; intente de nuevo.",
                       code="concurrent_change") from exc
    member.portal_blocked = blocked
    ended = repositories.delete_member_sessions(document_number) if blocked else 0
    if ended:
        log_event("session_expired", reason="revoked", actor=actor, document_number=document_number,
                  sessions=ended)
    return BlockResult(member, changed, ended)


def audit_at(event: AuditEvent) -> datetime | None:
    """The time an audit event was recorded (its sort key starts with it)."""
    try:
        return datetime.fromisoformat(event.event_key.split("#", 1)[0])
    except ValueError:
        return None
