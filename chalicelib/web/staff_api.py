"""The staff API (``/staff/v1/...``) and the scheduled export.

Authentication: in AWS every staff route carries Chalice's ``IAMAuthorizer`` (API Gateway checks
the SigV4 signature and IAM policy before the Lambda runs) and the staff identity is the caller's
``requestContext.identity.userArn``. In the local stage (``STAFF_API_KEY_REQUIRED=true``) there is
no IAM: each request must carry ``X-Api-Key`` equal to the ``STAFF_API_KEY`` secret (compared in
constant time); the audit trail names the staff user of the console session the request carries
(its cookie), or else the API key itself (``staff:api-key``). No header the caller sets names anyone.

Errors have the API's shape ``{"error": {"code", "message"}}`` with Spanish messages; nothing a
caller sends becomes a 500. No cookie is involved, so there is no CSRF check.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.adapters.dynamo.models import Payment
from chalicelib.config import Settings
from chalicelib.context import Context, get_context
from chalicelib.domain import payments as domain_payments
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import Export
from chalicelib.domain.errors import InvalidInput, NotFound, Unauthenticated
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.services import exports as exports_service
from chalicelib.services import payments as payments_service
from chalicelib.services import staff as staff_service
from chalicelib.web import http
from chalicelib.web.handler import Exchange, handler

API_KEY_MISSING = "Falta el encabezado X-Api-Key o no es válido."
NO_IDENTITY = "La solicitud no trae una identidad IAM."
EXPORT_NOT_FOUND = "No existe una exportación con ese identificador."
API_KEY_ACTOR = "staff:api-key"


class StaffCall(Exchange):
    """One staff request: the authenticated staff actor; a refusal is the API's JSON error."""

    actor = ""  # set by authenticate, before the handler runs

    def authenticate(self) -> None:
        self.actor = staff_actor(self.request, self.ctx)

    def body(self, *, optional: bool = False) -> dict[str, Any]:
        if optional and not http.raw_body(self.request).strip():
            return {}
        return http.json_fields(self.request)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def staff_actor(request: Request, ctx: Context) -> str:
    """``staff:<identity>``, or Unauthenticated (401)."""
    if ctx.settings.staff_api_key_required:
        sent = request.headers.get("x-api-key", "")
        # Equal-length digests: the comparison time depends on neither content nor length.
        if not sent or not hmac.compare_digest(_digest(sent), _digest(ctx.secret("STAFF_API_KEY"))):
            log_event("authn_login_fail", level=logging.WARNING, actor="staff", reason="invalid_api_key",
                      ip=http.client_ip(request, ctx.settings), path=request.path)
            raise Unauthenticated(API_KEY_MISSING, code="invalid_api_key")
        from chalicelib.services import staff_auth

        session = staff_auth.current(ctx, http.cookies(request).get(ctx.settings.staff_cookie_name))
        return session.actor if session is not None else API_KEY_ACTOR
    identity = (request.context or {}).get("identity") or {}
    arn = identity.get("userArn")
    if not isinstance(arn, str) or not arn:
        raise Unauthenticated(NO_IDENTITY, code="unauthenticated")
    return f"staff:{arn}"


staff_handler = handler(StaffCall)


# --- shapes ------------------------------------------------------------------------------------

def payment_summary(p: Payment | domain_payments.Payment) -> dict[str, Any]:
    return {
        "id": p.payment_id,
        "reference": p.reference,
        "status": p.status,
        "amount": int(p.amount),
        "cus": p.cus,
        "document_type": p.document_type,
        "document_number": p.document_number,
        "payer_name": p.payer_name,
        "bank_name": p.bank_name,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "approved_at": iso(p.approved_at),
        "review": {"reason": p.review_reason} if p.review_flag else None,
        "export": {"export_id": p.export_id, "exported_at": iso(p.exported_at),
                   "pending": bool(p.export_pending),
                   "applied_in_core_at": iso(p.core_applied_at)},
    }


def payment_detail(p: domain_payments.Payment) -> dict[str, Any]:
    return {
        **payment_summary(p),
        "payer_email": p.payer_email,
        "ip": p.ip,
        "person_type": p.person_type,
        "bank_code": p.bank_code,
        "description": p.description,
        "gateway": p.gateway,
        "gateway_id": p.gateway_id,
        "status_message": p.status_message,
        "original_amount": int(p.original_amount) if p.original_amount is not None else None,
        "items": [{"obligation_id": i.obligation_id, "type": i.type, "product_number": i.product_number,
                   "description": i.description, "amount": int(i.amount),
                   "due_before": int(i.due_before) if i.due_before is not None else None}
                  for i in p.items or []],
        "status_history": [{"status": h.status, "at": iso(h.at)} for h in p.status_history or []],
        "review": {
            "flagged": bool(p.review_flag),
            "reason": p.review_reason,
            "resolution": p.review_resolution,
            "resolved_by": p.review_resolved_by,
            "resolved_at": iso(p.review_resolved_at),
            "note": p.review_note,
        },
        "poll": {"next_at": iso(p.next_poll_at), "horizon_at": iso(p.poll_horizon_at)},
        "receipt": {"emailed": bool(p.receipt_emailed), "attempts": int(p.receipt_attempts or 0)},
        "consent": p.consent,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "event": entry.event,
        "actor": entry.actor,
        "ip": entry.ip,
        "reason": entry.reason,
        "payment_id": entry.payment_id,
        "details": dict(entry.details or {}),
    }


def export_json(export: Export, settings: Settings) -> dict[str, Any]:
    return {
        "export_id": export.export_id,
        "status": export.status,
        "created_at": iso(export.created_at),
        "completed_at": iso(export.completed_at),
        "requested_by": export.requested_by,
        "key": export.key,
        "rows": export.rows,
        "payments": export.payments,
        "total_amount": export.total_amount,
        "download_url": (exports_service.download_url(settings, export.key)
                         if export.is_complete and export.key else None),
    }


def _page(items: list[dict[str, Any]], name: str, cursor: str | None) -> Response:
    return http.json_response({name: items, "next_cursor": cursor})


def _paging(call: StaffCall, allowed: tuple[str, ...] = ("cursor", "limit")) -> tuple[int, str | None]:
    params = call.query()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidInput(f"Parámetro desconocido: {', '.join(unknown)}. Use: {', '.join(allowed)}.",
                           code="unknown_parameter", field=unknown[0])
    return staff_service.parse_limit(params.get("limit")), (params.get("cursor") or None)


# --- payments ------------------------------------------------------------------------------------

@staff_handler
def search_payments(call: StaffCall) -> Response:
    search = staff_service.parse_search(call.query())
    page = staff_service.search_payments(call.ctx, search, actor=call.actor)
    return _page([payment_summary(p) for p in page.items], "payments", page.next_cursor)


@staff_handler
def get_payment(call: StaffCall) -> Response:
    payment = payments_service.staff_payment(call.ctx, call.param("payment_id"))
    log_event("staff_payment_read", actor=call.actor, payment_id=payment.payment_id,
              document_number=payment.document_number)
    return http.json_response(payment_detail(payment))


@staff_handler
def requery_payment(call: StaffCall) -> Response:
    call.body(optional=True)
    result = payments_service.staff_requery(call.ctx, call.param("payment_id"), actor=call.actor,
                                            ip=call.ip)
    gateway = result.gateway
    return http.json_response({
        "outcome": result.outcome,
        "previous_status": result.before,
        "gateway": None if gateway is None else {
            "status": gateway.status, "amount": int(gateway.amount), "reference": gateway.reference,
            "cus": gateway.cus, "id": gateway.gateway_id},
        "error": result.error,
        "payment": payment_detail(result.payment),
    })


@staff_handler
def resend_receipt(call: StaffCall) -> Response:
    body = call.body(optional=True)
    reason = staff_service.parse_reason(body.get("reason"), required=False)
    payment = payments_service.resend_receipt(call.ctx, call.param("payment_id"), actor=call.actor,
                                              ip=call.ip, reason=reason)
    return http.json_response({"sent": True, "payment_id": payment.payment_id,
                               "status": payment.status}, status=202)


# --- review queue ----------------------------------------------------------------------------------

@staff_handler
def review_queue(call: StaffCall) -> Response:
    limit, cursor = _paging(call)
    page = staff_service.review_queue(call.ctx, limit=limit, cursor=cursor)
    return _page([payment_summary(p) for p in page.items], "payments", page.next_cursor)


@staff_handler
def resolve_review(call: StaffCall) -> Response:
    body = call.body()
    action = body.get("action")
    if not isinstance(action, str) or action not in payments_service.REVIEW_ACTIONS:
        raise InvalidInput("«action» debe ser apply, reject o keep_pending.", code="invalid_action",
                           field="action")
    reason = staff_service.parse_reason(body.get("reason"))
    result = payments_service.resolve_review(call.ctx, call.param("payment_id"), action=action,
                                             reason=reason or "", actor=call.actor, ip=call.ip)
    return http.json_response({"action": result.action, "outcome": result.outcome,
                               "payment": payment_detail(result.payment)})


# --- members -------------------------------------------------------------------------------------

@staff_handler
def member_audit(call: StaffCall) -> Response:
    document = staff_service.parse_document(call.param("document_number"), "document_number")
    limit, cursor = _paging(call)
    page = staff_service.member_audit(call.ctx, document, limit=limit, cursor=cursor, actor=call.actor)
    return _page([audit_json(e) for e in page.items], "events", page.next_cursor)


def _block(call: StaffCall, blocked: bool) -> Response:
    document = staff_service.parse_document(call.param("document_number"), "document_number")
    reason = staff_service.parse_reason(call.body().get("reason"))
    result = staff_service.set_blocked(call.ctx, document, blocked=blocked, reason=reason or "",
                                       actor=call.actor, ip=call.ip)
    return http.json_response({"document_number": document, "portal_blocked": blocked,
                               "changed": result.changed, "sessions_ended": result.sessions_ended})


@staff_handler
def block_member(call: StaffCall) -> Response:
    return _block(call, True)


@staff_handler
def unblock_member(call: StaffCall) -> Response:
    return _block(call, False)


# --- exports -------------------------------------------------------------------------------------

@staff_handler
def create_export(call: StaffCall) -> Response:
    call.body(optional=True)
    result = exports_service.export_approved(call.ctx, now=call.ctx.now(), requested_by=call.actor,
                                             claim_seconds=exports_service.API_CLAIM_SECONDS)
    return http.json_response({"export_id": result.export_id, "key": result.key, "rows": result.rows,
                               "payments": result.payments, "total_amount": result.total_amount},
                              status=201)


@staff_handler
def get_export(call: StaffCall) -> Response:
    export = exports_service.get_export(call.ctx, call.param("export_id"))
    if export is None:
        raise NotFound(EXPORT_NOT_FOUND, code="export_not_found")
    return http.json_response(export_json(export, call.settings))


# --- the schedule ----------------------------------------------------------------------------------

def scheduled_export(event: Any = None) -> dict[str, Any]:
    """Daily at 6:00 in Colombia (11:00 UTC): every approved payment not exported yet."""
    ctx = get_context()
    result = exports_service.export_approved(ctx, now=ctx.now(), requested_by=exports_service.SCHEDULE_ACTOR)
    return {"export_id": result.export_id, "key": result.key, "rows": result.rows,
            "payments": result.payments, "total_amount": result.total_amount}
