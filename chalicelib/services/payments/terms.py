"""Before a payment is saved: what the gateway asks the payer to accept, the acceptance as stored
with the payment, the bank choice, and the request the gateway will receive (checked first).

The acceptance is stored with the payment as ``consent``: the documents shown (with the version or
token that identifies what was shown), when, from which IP and user agent. It is also what the
gateway receives as ``PaymentRequest.accepted_documents``, so the proof and the transaction never
disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from chalicelib.adapters.gateways.base import (
    ConsentDocument,
    GatewayError,
    InvalidRequest,
    PaymentRequest,
    PersonType,
    missing_documents,
)
from chalicelib.context import Context
from chalicelib.domain.errors import InvalidInput, ServiceUnavailable
from chalicelib.domain.payments import Payment
from chalicelib.formatting import iso

TERMS_NOT_ACCEPTED = "Para pagar debe leer y aceptar: {titles}."
TERMS_UNAVAILABLE = ("No pudimos obtener los términos de la pasarela de pagos. Por favor intente "
                     "más tarde.")
EMAIL_MISSING = ("Para pagar por PSE necesitamos su correo electrónico, que no tenemos registrado. "
                 "Actualícelo en la cooperativa (llame al {phone} o escriba a {email}) y vuelva a "
                 "intentar el pago.")
USER_AGENT_LIMIT = 512
MAX_ACCEPTED_IDS = 20


@dataclass(frozen=True)
class PaymentTerms:
    gateway: str
    documents: list[ConsentDocument]


@dataclass(frozen=True)
class Acceptance:
    """The payer's acceptance of every document the gateway asked for, as it happened."""

    documents: tuple[ConsentDocument, ...]
    accepted_at: datetime
    ip: str
    user_agent: str

    def record(self) -> dict[str, Any]:
        """As stored with the payment (``Payment.consent``)."""
        return {
            "documents": [{"id": d.id, "title": d.title, "url": d.url, "version": d.version}
                          for d in self.documents],
            "accepted_at": iso(self.accepted_at),
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


def payment_terms(ctx: Context) -> PaymentTerms:
    """What a new payment's gateway asks the payer to accept (``[]``: nothing)."""
    gateway = ctx.gateway
    try:
        documents = list(gateway.documents())
    except GatewayError as exc:
        raise ServiceUnavailable(TERMS_UNAVAILABLE, code="terms_unavailable") from exc
    return PaymentTerms(gateway=gateway.name, documents=documents)


def bank_chosen_by_gateway(ctx: Context) -> bool:
    """New payments' gateway asks the payer for the bank on its own page: no bank list here."""
    return bool(ctx.gateway.chooses_bank)


def accept(ctx: Context, accepted_ids: object, *, ip: str, user_agent: str) -> Acceptance:
    """The acceptance of every document of :func:`payment_terms`; ``terms_not_accepted`` (400)
    naming the missing ones, before anything is saved."""
    ids = accepted_ids if isinstance(accepted_ids, (list, tuple)) else []
    accepted = [i for i in ids[:MAX_ACCEPTED_IDS] if isinstance(i, str)]
    documents = payment_terms(ctx).documents
    missing = missing_documents(documents, accepted)
    if missing:
        titles = ", ".join(f"«{d.title}»" for d in missing)
        raise InvalidInput(TERMS_NOT_ACCEPTED.format(titles=titles), code="terms_not_accepted",
                           field="accepted_documents")
    printable = "".join(ch if ch.isprintable() else " " for ch in str(user_agent or ""))
    return Acceptance(documents=tuple(documents), accepted_at=ctx.now(), ip=ip,
                      user_agent=" ".join(printable.split())[:USER_AGENT_LIMIT])


@dataclass(frozen=True)
class ConsentView:
    """A stored acceptance as staff read it."""

    documents: tuple[ConsentDocument, ...]
    accepted_at: datetime | None
    ip: str
    user_agent: str


def consent_view(consent: Mapping[str, Any] | None) -> ConsentView | None:
    """``None`` for a payment stored before acceptances were recorded."""
    if not consent:
        return None
    raw_at = consent.get("accepted_at")
    try:
        accepted_at = datetime.fromisoformat(raw_at) if isinstance(raw_at, str) else None
    except ValueError:
        accepted_at = None
    return ConsentView(documents=accepted_documents(consent), accepted_at=accepted_at,
                       ip=str(consent.get("ip", "")), user_agent=str(consent.get("user_agent", "")))


def accepted_documents(consent: Mapping[str, Any] | None) -> tuple[ConsentDocument, ...]:
    """The documents of a stored acceptance (``()`` for a payment stored without one)."""
    return tuple(ConsentDocument(id=str(d.get("id", "")), title=str(d.get("title", "")),
                                 url=str(d.get("url", "")), version=str(d.get("version", "")))
                 for d in (consent or {}).get("documents", []) if isinstance(d, Mapping))


class Payer(Protocol):
    @property
    def phone(self) -> str | None: ...


def payment_request(ctx: Context, payment: Payment, member: Payer) -> PaymentRequest:
    """The gateway's request for ``payment``, with the acceptance stored with it."""
    consent = payment.consent or {}
    person_type: PersonType = "juridica" if payment.person_type == "juridica" else "natural"
    return PaymentRequest(
        reference=payment.reference, amount=int(payment.amount), bank_code=payment.bank_code,
        person_type=person_type, payer_document_type=payment.document_type,
        payer_document_number=payment.document_number, payer_name=payment.payer_name,
        payer_email=payment.payer_email or "", payer_phone=member.phone or "",
        description=payment.description,
        return_url=f"{ctx.settings.public_base_url}/pagos/{payment.payment_id}/retorno",
        ip=payment.ip, user_agent=str(consent.get("user_agent", "")),
        accepted_documents=accepted_documents(consent), product_opening_date=opened_on(payment))


def opened_on(payment: Payment) -> date | None:
    """The opening date of the first product paid whose core system gave one (PSE's
    ``reference_two`` for financial-services merchants); None when none did."""
    return next((date.fromisoformat(item.opened_on) for item in payment.items if item.opened_on),
                None)


def check_request(ctx: Context, payment: Payment, member: Payer) -> None:
    """The gateway's own checks (email, phone, document type for the person type), before the
    payment is saved: a Spanish 400 naming what to fix."""
    try:
        ctx.gateway.validate_request(payment_request(ctx, payment, member))
    except InvalidRequest as exc:
        s = ctx.settings
        message = (EMAIL_MISSING.format(phone=s.support_phone, email=s.support_email)
                   if exc.code == "payer_email_missing" else exc.message)
        field = "person_type" if exc.code == "document_type_not_allowed" else None
        raise InvalidInput(message, code=exc.code, field=field) from exc
