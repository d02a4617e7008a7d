"""Pages of the payment journey: what I owe → amounts → bank and summary → PSE → receipt, history."""

from __future__ import annotations

import re

from chalice import Response

from chalicelib.domain.errors import DomainError, InvalidInput
from chalicelib.services import obligations as obligations_service
from chalicelib.services import payments as payments_service
from chalicelib.web import headers, http
from chalicelib.web.pages import CSRF_REFUSED, Page, page_handler, require_session

AMOUNT_CHOICES = ("due", "minimum", "other")
_PESOS = re.compile(r"^\$?\s*([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)$")
AMOUNT_FORMAT = "Escriba el valor en pesos, sin centavos (por ejemplo 150000 o 150.000)."
NOTHING_CHOSEN = "Marque al menos una obligación para pagar."


def parse_pesos(raw: str) -> int:
    """``"$ 1.234.567"``, ``"1.234.567"`` or ``"1234567"`` → 1234567; a Spanish error otherwise."""
    match = _PESOS.match(raw.strip())
    if not match:
        raise InvalidInput(AMOUNT_FORMAT)
    return int(match.group(1).replace(".", ""))


def _chosen_items(page: Page, fields: dict[str, str],
                  chosen: list[str]) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """The (obligation, amount) pairs the member ticked, and per-obligation errors."""
    document_number = require_session(page).document_number
    owed = {o.id: o for o in obligations_service.list_obligations(page.ctx, document_number)}
    items: list[tuple[str, int]] = []
    errors: dict[str, str] = {}
    for obligation_id in chosen:
        obligation = owed.get(obligation_id)
        if obligation is None:
            errors["general"] = "Una de las obligaciones elegidas ya no está disponible. Revise la lista."
            continue
        choice = fields.get(f"opcion_{obligation_id}", "due")
        if choice == "minimum":
            items.append((obligation_id, obligation.minimum_amount))
        elif choice == "other":
            try:
                items.append((obligation_id, parse_pesos(fields.get(f"otro_{obligation_id}", ""))))
            except InvalidInput as error:
                errors[obligation_id] = error.message
        else:
            items.append((obligation_id, obligation.amount_due))
    if not chosen:
        errors["general"] = NOTHING_CHOSEN
    return items, errors


def _chosen_ids(page: Page) -> tuple[dict[str, str], list[str]]:
    values = http.form_values(page.request)
    chosen = list(dict.fromkeys(values.get("obligacion", [])))[:50]
    return {key: vals[-1] for key, vals in values.items()}, chosen


def _obligations_page(page: Page, *, status: int = 200, errors: dict[str, str] | None = None,
                      fields: dict[str, str] | None = None, chosen: list[str] | None = None) -> Response:
    session = require_session(page)
    owed = obligations_service.list_obligations(page.ctx, session.document_number)
    return page.render("obligations.html", status=status, obligations=owed, errors=errors or {},
                       fields=fields or {}, chosen=set(chosen or []))


@page_handler
def obligations(page: Page) -> Response:
    return _obligations_page(page)


@page_handler
def summary(page: Page) -> Response:
    session = require_session(page)
    fields, chosen = _chosen_ids(page)
    if not page.check_csrf(fields):
        return _obligations_page(page, status=403, errors={"general": CSRF_REFUSED})
    items, errors = _chosen_items(page, fields, chosen)
    if errors:
        return _obligations_page(page, status=400, errors=errors, fields=fields, chosen=chosen)
    try:
        preview = payments_service.preview_payment(page.ctx, document_number=session.document_number,
                                                   items=items)
    except DomainError as error:
        return _obligations_page(page, status=error.status, errors={"general": error.message},
                                 fields=fields, chosen=chosen)
    return _summary_page(page, preview=preview, items=items)


def _summary_page(page: Page, *, preview, items: list[tuple[str, int]], status: int = 200,  # type: ignore[no-untyped-def]
                  error: str | None = None, error_field: str | None = None, bank_code: str = "",
                  person_type: str = "natural") -> Response:
    banks_error = None
    try:
        banks = payments_service.list_banks(page.ctx)
    except DomainError as failure:
        banks, banks_error = [], failure.message
    return page.render("payment_summary.html", status=status, preview=preview, items=items, banks=banks,
                       banks_error=banks_error, error=error, error_field=error_field, bank_code=bank_code,
                       person_type=person_type,
                       idempotency_key=page.ctx.token(18))


@page_handler
def pay(page: Page) -> Response:
    session = require_session(page)
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return _obligations_page(page, status=403, errors={"general": CSRF_REFUSED})
    try:
        items = _posted_items(fields)
    except InvalidInput as error:
        return _obligations_page(page, status=400, errors={"general": error.message})
    bank_code = fields.get("bank_code", "")
    person_type = fields.get("person_type", "")
    try:
        started = payments_service.start_payment(
            page.ctx, document_number=session.document_number, items=items, bank_code=bank_code,
            person_type=person_type, idempotency_key=fields.get("idempotency_key", ""), ip=page.ip)
    except DomainError as error:
        if error.code == "invalid_bank" or error.field in ("bank_code", "person_type"):
            preview = payments_service.preview_payment(page.ctx, document_number=session.document_number,
                                                       items=items)
            return _summary_page(page, preview=preview, items=items, status=400, error=error.message,
                                 error_field=error.field or "bank_code", bank_code=bank_code,
                                 person_type=person_type)
        return _obligations_page(page, status=error.status, errors={"general": error.message})
    if started.redirect_url:
        return http.redirect(started.redirect_url)  # the bank's page, full window (never a frame)
    return page.redirect(f"/pagos/{started.id}")


def _posted_items(fields: dict[str, str]) -> list[tuple[str, int]]:
    """The summary form carries ``item_N_id`` / ``item_N_amount`` pairs."""
    items = []
    for index in range(50):
        obligation_id = fields.get(f"item_{index}_id")
        if obligation_id is None:
            break
        amount = fields.get(f"item_{index}_amount", "")
        if not amount.isdigit() or len(amount) > 12:
            raise InvalidInput(AMOUNT_FORMAT)
        items.append((obligation_id, int(amount)))
    if not items:
        raise InvalidInput(NOTHING_CHOSEN)
    return items


@page_handler
def payment_return(page: Page) -> Response:
    """Back from the bank: ask the gateway server-side; works without a session (receipt only)."""
    session = page.session()
    receipt = payments_service.refresh_payment(
        page.ctx, page.request.uri_params["payment_id"],
        document_number=session.document_number if session else None)
    return page.render("receipt.html", receipt=receipt, returning=True)


@page_handler
def payment_receipt(page: Page) -> Response:
    session = require_session(page)
    receipt = payments_service.receipt(page.ctx, page.request.uri_params["payment_id"],
                                       document_number=session.document_number)
    return page.render("receipt.html", receipt=receipt, returning=False)


@page_handler
def payment_history(page: Page) -> Response:
    history = payments_service.list_payments(page.ctx, require_session(page).document_number)
    return page.render("payments.html", payments=history)


@page_handler
def receipt_pdf(page: Page) -> Response:
    """The member's own receipt as a PDF download (another member's id answers "not found")."""
    session = require_session(page)
    name, data = payments_service.receipt_pdf(page.ctx, page.request.uri_params["payment_id"],
                                              document_number=session.document_number)
    return Response(body=data, status_code=200, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": headers.attachment(name),
    })
