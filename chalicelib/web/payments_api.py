"""The payments part of the JSON API (SPEC §6), the PSE webhook and the reconciliation schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from chalice import Response
from chalice.app import Request

from chalicelib.adapters.gateways.base import IgnoredEvent, InvalidEvent
from chalicelib.config import ConfigError
from chalicelib.context import Context, get_context
from chalicelib.domain.allocation import AllocationLine
from chalicelib.domain.errors import InvalidInput
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.services import obligations as obligations_service
from chalicelib.services import payments as payments_service
from chalicelib.services.obligations import ObligationView
from chalicelib.services.payments import ReceiptView
from chalicelib.services.payments import terms as payment_terms_service
from chalicelib.web import http
from chalicelib.web.api import Call, api_handler

MAX_ITEMS_IN_BODY = 50
V = TypeVar("V")
ITEMS_SHAPE = ("Envíe «items» como una lista de objetos con «obligation_id» (texto) y «amount» "
               "(entero en pesos).")


# --- shapes ------------------------------------------------------------------------------------

def obligation_json(view: ObligationView) -> dict[str, Any]:
    return {
        "id": view.id,
        "type": view.type,
        "type_label": view.type_label,
        "product_number": view.product_number,
        "description": view.description,
        "due_date": view.due_date.isoformat(),
        "overdue_days": view.overdue_days,
        "amount_due": view.amount_due,
        "minimum_amount": view.minimum_amount,
        "maximum_amount": view.maximum_amount,
        "pending_payment_id": view.pending_payment_id,
        "pending_reference": view.pending_reference,
        "instalment_parts": _lines(view.breakdown) if view.parts is not None else None,
    }


def _lines(lines: Iterable[AllocationLine]) -> list[dict[str, Any]]:
    """Parts of an instalment, or how an amount applies to them, in the cooperative's order."""
    return [{"part": line.part, "label": line.label, "amount": line.amount} for line in lines]


def receipt_json(view: ReceiptView) -> dict[str, Any]:
    return {
        "id": view.id,
        "reference": view.reference,
        "status": view.status,
        "status_label": view.status_label,
        "status_detail": view.status_detail,
        "is_final": view.is_final,
        "can_retry": view.can_retry,
        "amount": view.amount,
        "cus": view.cus,
        "bank_name": view.bank_name,
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
        "approved_at": iso(view.approved_at),
        "description": view.description,
        "ip": view.ip,
        "payer_document": view.payer_document,
        "payer_name": view.payer_name,
        "items": [{"obligation_id": i.obligation_id, "type_label": i.type_label,
                   "product_number": i.product_number, "description": i.description,
                   "amount": i.amount, "allocation": _lines(i.allocation)} for i in view.items],
        "timeline": [{"status_label": label, "at": iso(at)} for label, at in view.timeline],
    }


def _items(raw: object) -> list[tuple[str, Any]]:
    """The body's items as (obligation id, raw amount); the service judges the amounts."""
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ITEMS_IN_BODY:
        raise InvalidInput(ITEMS_SHAPE, field="items")
    items: list[tuple[str, Any]] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("obligation_id"), str):
            raise InvalidInput(ITEMS_SHAPE, field="items")
        items.append((entry["obligation_id"], entry.get("amount")))
    return items


# --- member calls ------------------------------------------------------------------------------

def _members_list(call: Call, key: str, views: Callable[[Context, str], Sequence[V]],
                  shape: Callable[[V], dict[str, Any]]) -> Response:
    """The signed-in member's ``views`` as ``{key: [shape(view), ...]}``."""
    session = call.session()
    return http.json_response({key: [shape(v) for v in views(call.ctx, session.document_number)]})


@api_handler
def obligations(call: Call) -> Response:
    return _members_list(call, "obligations", obligations_service.list_obligations, obligation_json)


@api_handler
def banks(call: Call) -> Response:
    call.session()
    if payment_terms_service.bank_chosen_by_gateway(call.ctx):
        return http.json_response({"banks": [], "chosen_by_gateway": True})
    listed = payments_service.list_banks(call.ctx)
    return http.json_response({"banks": [{"code": b.code, "name": b.name} for b in listed]})


@api_handler
def payment_terms(call: Call) -> Response:
    """What the payer must accept before ``POST /api/v1/payments`` (their ids go back in
    ``accepted_documents``)."""
    call.session()
    terms = payment_terms_service.payment_terms(call.ctx)
    return http.json_response({"gateway": terms.gateway, "documents": [
        {"id": d.id, "title": d.title, "url": d.url} for d in terms.documents]})


@api_handler
def create_payment(call: Call) -> Response:
    session = call.session(state_changing=True)
    body = call.body()
    started = payments_service.start_payment(
        call.ctx,
        document_number=session.document_number,
        items=_items(body.get("items")),
        bank_code=body.get("bank_code"),  # type: ignore[arg-type]  # checked by the service
        person_type=body.get("person_type"),  # type: ignore[arg-type]
        idempotency_key=call.request.headers.get("idempotency-key", ""),
        ip=call.ip,
        accepted_documents=body.get("accepted_documents"),
        user_agent=call.request.headers.get("user-agent", ""),
    )
    return http.json_response({"payment": {
        "id": started.id,
        "reference": started.reference,
        "status": started.status,
        "amount": started.amount,
        "redirect_url": started.redirect_url,
    }}, status=201)


@api_handler
def list_payments(call: Call) -> Response:
    return _members_list(call, "payments", payments_service.list_payments, receipt_json)


@api_handler
def get_payment(call: Call) -> Response:
    session = call.session()
    payment_id = call.param("payment_id")
    view = payments_service.receipt(call.ctx, payment_id, document_number=session.document_number)
    return http.json_response(receipt_json(view))


# --- the gateway's webhook (no session, no CSRF: the signature is the authentication) ----------

def _error(status: int, code: str, message: str) -> Response:
    return http.json_response({"error": {"code": code, "message": message}}, status=status)


def webhook(request: Request, gateway: str | None = None) -> Response:
    """200 processed/duplicate/ignored/deferred; 401 forged, stale or unverifiable; 400 unreadable;
    404 for a gateway this stage is not configured for; 503 when the gateway could not confirm it
    and only a new delivery can settle it. ``gateway`` is the one whose path it came to (by
    default the configured one)."""
    raw = http.raw_body(request)
    try:
        parsed = http.parse_json(raw)
    except InvalidInput:
        parsed = None
    if not isinstance(parsed, dict):
        return _error(400, "invalid_event", "El cuerpo del evento no es un objeto JSON legible.")
    ctx = get_context()
    try:
        result = payments_service.apply_gateway_event(ctx, request.headers, raw, gateway=gateway)
    except ConfigError as exc:  # a path of a gateway this stage has no credentials for
        log_event("payment_event_unconfigured_gateway", level=logging.WARNING, gateway=gateway,
                  ip=http.client_ip(request, ctx.settings), reason=str(exc)[:200])
        return _error(404, "unknown_gateway", "Esta pasarela de pagos no está configurada.")
    except IgnoredEvent as exc:  # genuine, of a type we do not act on: the gateway stops retrying
        log_event("payment_event_ignored", event_type=exc.event_type)
        return http.json_response({"result": "ignored"})
    except InvalidEvent as exc:
        log_event("payment_event_rejected", level=logging.WARNING,
                  ip=http.client_ip(request, ctx.settings), reason=str(exc)[:200])
        return _error(401, "invalid_signature", "La firma del evento no es válida o el evento venció.")
    except Exception:
        logging.getLogger("sucursal").exception("webhook_failed")
        return _error(500, "internal_error", "No pudimos procesar el evento; reintente más tarde.")
    if result == "retry":
        return _error(503, "gateway_unavailable",
                      "No pudimos confirmar el evento con la pasarela; envíelo de nuevo más tarde.")
    return http.json_response({"result": result})


# --- the schedule --------------------------------------------------------------------------------

def reconcile(event: Any = None) -> dict[str, int]:
    return payments_service.reconcile_pending(get_context()).as_dict()
