"""Pages of the payment journey: what I owe → amounts → bank and summary → PSE → receipt, history."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from chalice import Response

from chalicelib.domain import payments as rules
from chalicelib.domain.errors import DomainError, InvalidInput
from chalicelib.services import obligations as obligations_service
from chalicelib.services import payments as payments_service
from chalicelib.services.obligations import ObligationView
from chalicelib.services.payments import PaymentPreview, ReceiptView
from chalicelib.services.payments import terms as payment_terms_service
from chalicelib.web import headers, http
from chalicelib.web.pages import CSRF_REFUSED, Page, page_handler, require_session

#: A member's choice per obligation; anything else (or nothing) means "not paying it now".
AMOUNT_CHOICES = ("due", "minimum", "other")
NOTHING_CHOSEN = "Elija cuánto pagar en al menos una obligación."
OTHER_EMPTY = "Escriba el valor que desea pagar, o elija otra opción."
GONE = "Una de las obligaciones elegidas ya no está disponible. Revise la lista."
_FIELD = re.compile(r"(?:opcion|otro)_(.{1,64})")
#: Refusals the member fixes on the summary itself (shown there, with everything chosen kept).
SUMMARY_FIELDS = ("bank_code", "person_type", "accepted_documents")
SUMMARY_CODES = ("invalid_bank", "payer_email_missing", "payer_phone_missing")
#: The return page reloads itself (an HTTP ``Refresh``, no JavaScript) while the payment is open,
#: at most this many times (then "Consultar de nuevo" is left); ``?auto=0`` stops it.
RETURN_REFRESH_SECONDS = 5
RETURN_REFRESH_LIMIT = 36


@dataclass
class Selection:
    """What the member chose on the obligations form (or in a summary's address).

    ``choices`` maps an obligation to ``due``, ``minimum`` or ``other``; ``typed`` keeps what was
    typed, as typed; ``errors`` are keyed by obligation id, ``total`` or ``general``.
    """

    items: list[tuple[str, int]] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.items)

    def query(self) -> str:
        """The selection as the summary's address carries it (Back, retry, "Pagar lo vencido")."""
        pairs: list[tuple[str, str]] = []
        for obligation_id, amount in self.items:
            choice = self.choices[obligation_id]
            pairs.append((f"opcion_{obligation_id}", choice))
            if choice == "other":
                pairs.append((f"otro_{obligation_id}", str(amount)))
        return urlencode(pairs)


def _amount(obligation: ObligationView, choice: str, typed: str) -> int:
    if choice == "due":
        amount = obligation.amount_due
    elif choice == "minimum":
        amount = obligation.minimum_amount
    elif not typed:
        raise rules.InvalidAmount(OTHER_EMPTY, field="amount")
    else:
        amount = rules.parse_pesos(typed)
    return rules.check_item_amount(amount, rules.Limits(obligation.minimum_amount,
                                                        obligation.maximum_amount),
                                   description=obligation.description)


def read_selection(fields: dict[str, str], owed: list[ObligationView],
                   limits: rules.Limits) -> Selection:
    """One choice per obligation; typing another amount chooses it (it can never be ignored)."""
    selection = Selection()
    known = {o.id for o in owed}
    for obligation in owed:  # one held by a pending payment gets ACH's refusal from the preview
        typed = fields.get(f"otro_{obligation.id}", "").strip()[:30]
        choice = "other" if typed else fields.get(f"opcion_{obligation.id}", "")
        if choice not in AMOUNT_CHOICES:
            continue
        selection.choices[obligation.id] = choice
        if typed:
            selection.typed[obligation.id] = typed
        try:
            selection.items.append((obligation.id, _amount(obligation, choice, typed)))
        except rules.InvalidAmount as error:
            selection.errors[obligation.id] = error.message
    asked = {m.group(1) for key, value in fields.items() if value and (m := _FIELD.fullmatch(key))}
    if asked - known:
        selection.errors["general"] = GONE
    elif not selection.choices:
        selection.errors["general"] = NOTHING_CHOSEN
    elif not selection.errors:
        try:
            rules.check_total(selection.total, limits)
        except rules.InvalidAmount as error:
            selection.errors["total"] = error.message
    return selection


def _owed(page: Page) -> list[ObligationView]:
    return obligations_service.list_obligations(page.ctx, require_session(page).document_number)


def _total_limits(page: Page) -> rules.Limits:
    return rules.Limits(page.settings.payment_min_amount, page.settings.payment_max_amount)


def _obligations_page(page: Page, *, status: int = 200, selection: Selection | None = None,
                      owed: list[ObligationView] | None = None, show_errors: bool = True,
                      pending: rules.PaymentPending | None = None) -> Response:
    owed = owed if owed is not None else _owed(page)
    selection = selection or Selection()
    return page.render("obligations.html", status=status, obligations=owed, pending=pending,
                       errors=selection.errors if show_errors else {},
                       choices=selection.choices, typed=selection.typed, total=selection.total,
                       nothing_chosen=NOTHING_CHOSEN)


def _refused(page: Page, error: DomainError | str, status: int = 400) -> Response:
    """The obligations page with the refusal; PSE's pending rule as a notice, not an error."""
    if isinstance(error, rules.PaymentPending):
        return _obligations_page(page, status=error.status, pending=error)
    message = error if isinstance(error, str) else error.message
    return _obligations_page(page, status=status, selection=Selection(errors={"general": message}))


@page_handler
def obligations(page: Page) -> Response:
    """The form; an address from "Volver" or a retry comes back with its choices filled in."""
    query = page.query()
    owed = _owed(page)
    selection = read_selection(query, owed, _total_limits(page)) if query else None
    return _obligations_page(page, selection=selection, owed=owed, show_errors=False)


@page_handler
def summary_submit(page: Page) -> Response:
    """The obligations form: errors at their fields, or post/redirect/get to the summary."""
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return _refused(page, CSRF_REFUSED, 403)
    owed = _owed(page)
    selection = read_selection(fields, owed, _total_limits(page))
    if selection.errors:
        return _obligations_page(page, status=400, selection=selection, owed=owed)
    return page.redirect(f"/pagos/resumen?{selection.query()}")


@page_handler
def summary(page: Page) -> Response:
    session = require_session(page)
    query = page.query()
    if not query:  # a bookmark or a typed address: nothing chosen yet
        return page.redirect("/obligaciones")
    owed = _owed(page)
    selection = read_selection(query, owed, _total_limits(page))
    if selection.errors:
        return _obligations_page(page, status=400, selection=selection, owed=owed)
    try:
        preview = payments_service.preview_payment(page.ctx, document_number=session.document_number,
                                                   items=selection.items)
    except rules.PaymentPending as pending:
        return _obligations_page(page, status=pending.status, selection=selection, owed=owed,
                                 pending=pending, show_errors=False)
    except DomainError as error:
        selection.errors["general"] = error.message
        return _obligations_page(page, status=error.status, selection=selection, owed=owed)
    return _summary_page(page, preview=preview, selection=selection)


def _summary_page(page: Page, *, preview: PaymentPreview, selection: Selection, status: int = 200,
                  error: str | None = None, error_field: str | None = None, bank_code: str = "",
                  person_type: str = "", accepted: Sequence[str] = ()) -> Response:
    banks_error = terms_unavailable = None
    try:
        banks = payments_service.list_banks(page.ctx)
    except DomainError as failure:
        banks, banks_error = [], failure.message
    try:
        documents = payment_terms_service.payment_terms(page.ctx).documents
    except DomainError as failure:
        documents, terms_unavailable = [], failure.message
    return page.render("payment_summary.html", status=status, preview=preview,
                       items=selection.items, choices=selection.choices,
                       selection_query=selection.query(), banks=banks,
                       banks_error=banks_error, error=error, error_field=error_field,
                       documents=documents, accepted=set(accepted),
                       terms_unavailable=terms_unavailable,
                       chooses_bank=payment_terms_service.bank_chosen_by_gateway(page.ctx),
                       bank_code=bank_code or preview.bank_code or "",
                       person_type=person_type or preview.person_type or "natural",
                       idempotency_key=page.ctx.token(18))


@page_handler
def pay(page: Page) -> Response:
    session = require_session(page)
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return _refused(page, CSRF_REFUSED, 403)
    try:
        selection = _posted_selection(fields)
    except DomainError as error:
        return _refused(page, error)
    bank_code = fields.get("bank_code", "")
    person_type = fields.get("person_type", "")
    accepted = http.form_values(page.request).get("accepted_documents", [])
    try:
        started = payments_service.start_payment(
            page.ctx, document_number=session.document_number, items=selection.items,
            bank_code=bank_code, person_type=person_type,
            idempotency_key=fields.get("idempotency_key", ""), ip=page.ip,
            accepted_documents=accepted, user_agent=page.request.headers.get("user-agent", ""))
    except DomainError as error:
        if error.code in SUMMARY_CODES or error.field in SUMMARY_FIELDS:
            preview = payments_service.preview_payment(page.ctx, document_number=session.document_number,
                                                       items=selection.items)
            return _summary_page(page, preview=preview, selection=selection, status=400,
                                 error=error.message,
                                 error_field=error.field or ("bank_code" if error.code == "invalid_bank"
                                                             else None),
                                 bank_code=bank_code, person_type=person_type, accepted=accepted)
        return _refused(page, error, error.status)
    if started.redirect_url:
        return http.redirect(started.redirect_url)  # the bank's page, full window (never a frame)
    return page.redirect(f"/pagos/{started.id}")


def _posted_selection(fields: dict[str, str]) -> Selection:
    """The summary form carries ``item_N_id`` / ``item_N_amount`` / ``item_N_choice`` triples."""
    selection = Selection()
    for index in range(rules.MAX_ITEMS + 1):
        obligation_id = fields.get(f"item_{index}_id")
        if obligation_id is None:
            break
        selection.items.append((obligation_id, rules.parse_pesos(fields.get(f"item_{index}_amount"))))
        choice = fields.get(f"item_{index}_choice", "other")
        selection.choices[obligation_id] = choice if choice in AMOUNT_CHOICES else "other"
    if not selection.items:
        raise InvalidInput(NOTHING_CHOSEN)
    return selection


def _receipt_page(page: Page, receipt: ReceiptView, *, returning: bool,
                  query_note: str | None = None, refresh_url: str | None = None) -> Response:
    """The result first; while pending, what happens next and from when the member may pay again."""
    retry_from = receipt.created_at + timedelta(seconds=page.settings.gateway_pending_expiry_seconds)
    return page.render("receipt.html", receipt=receipt, retry_from=retry_from, returning=returning,
                       query_note=query_note, refresh_url=refresh_url,
                       refresh_seconds=RETURN_REFRESH_SECONDS)


def _return_refresh_url(page: Page, receipt: ReceiptView) -> str | None:
    """Where the return page reloads itself next, or None (final, stopped, or enough tries)."""
    query = dict(page.request.query_params or {})
    count = str(query.get("vez", ""))
    done = int(count) if re.fullmatch(r"[0-9]{1,3}", count) else 0
    if receipt.is_final or query.get("auto") == "0" or done >= RETURN_REFRESH_LIMIT:
        return None
    return page.url(f"/pagos/{receipt.id}/retorno?vez={done + 1}")


@page_handler
def payment_return(page: Page) -> Response:
    """Back from the bank: ask the gateway server-side; works without a session (receipt only)."""
    session = page.session()
    receipt = payments_service.refresh_payment(
        page.ctx, page.param("payment_id"),
        document_number=session.document_number if session else None)
    refresh_url = _return_refresh_url(page, receipt)
    response = _receipt_page(page, receipt, returning=True, refresh_url=refresh_url)
    if refresh_url is not None:
        response.headers["Refresh"] = f"{RETURN_REFRESH_SECONDS}; url={refresh_url}"
    return response


@page_handler
def payment_receipt(page: Page) -> Response:
    session = require_session(page)
    receipt = payments_service.receipt(page.ctx, page.param("payment_id"),
                                       document_number=session.document_number)
    outcome = page.query().get("consulta", "")
    note = None if receipt.is_final else payments_service.STATUS_QUERY_NOTES.get(outcome)
    return _receipt_page(page, receipt, returning=False, query_note=note)


@page_handler
def payment_status_query(page: Page) -> Response:
    """"Consultar estado" (post/redirect/get): the gateway asked server-side, throttled."""
    fields = http.form_fields(page.request)
    payment_id = page.param("payment_id")
    session = page.session()
    if not page.check_csrf(fields):
        return page.redirect("/pagos" if session else "/")
    outcome = payments_service.check_status(
        page.ctx, payment_id, document_number=session.document_number if session else None)
    if session is None:  # the return page asks the gateway itself
        return page.redirect(f"/pagos/{payment_id}/retorno")
    return page.redirect(f"/pagos/{payment_id}?consulta={outcome}")


@page_handler
def payment_history(page: Page) -> Response:
    history = payments_service.list_payments(page.ctx, require_session(page).document_number)
    return page.render("payments.html", payments=history)


@page_handler
def receipt_pdf(page: Page) -> Response:
    """The member's own receipt as a PDF download (another member's id answers "not found")."""
    session = require_session(page)
    name, data = payments_service.receipt_pdf(page.ctx, page.param("payment_id"),
                                              document_number=session.document_number)
    return Response(body=data, status_code=200, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": headers.attachment(name),
    })
