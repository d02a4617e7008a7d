"""The payment gateway port: what the payment services need from any PSE gateway.

Adapters translate their provider's statuses into the four outcomes below, amounts into integer
COP, and raise the errors below; nothing provider-specific leaks past this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

GatewayStatus = Literal["PENDING", "APPROVED", "REJECTED", "FAILED"]
PersonType = Literal["natural", "juridica"]

#: Why a gateway's answer must not be applied automatically (``GatewayTransaction.review_reason``).
REVIEW_PARTIAL_APPROVAL = "partial_approval"

#: The document types PSE takes for each person type: a natural person never pays with a NIT, a
#: company only with one (reference/pse.md §1.2).
PSE_DOCUMENT_TYPES: dict[str, tuple[str, ...]] = {
    "natural": ("CC", "CE", "TI", "PP"),
    "juridica": ("NIT",),
}


# ACH's literal texts where they fit (reference/pse.md §2.2 and §1.2).
MSG_CREATE = ("No se pudo crear la transacción, por favor intente más tarde o comuníquese con "
              "la empresa")
MSG_BANKS = "No se pudo obtener la lista de Entidades Financieras, por favor intente más tarde"
MSG_QUERY = ("No se pudo consultar el estado de la transacción, por favor intente más tarde o "
             "comuníquese con la empresa")
MSG_TIMEOUT = ("La entidad financiera no respondió a tiempo. Estamos verificando el estado de su "
               "pago; por favor no intente pagar de nuevo hasta conocer el resultado")


def clean_text(text: str, limit: int) -> str:
    """ACH refuses ``|`` and ``"`` in descriptions and references; no control characters."""
    cleaned = "".join(" " if (ch.isspace() or not ch.isprintable()) else ch
                      for ch in text if ch not in '|"')
    return " ".join(cleaned.split())[:limit].strip()


@dataclass(frozen=True)
class Bank:
    code: str
    name: str


@dataclass(frozen=True)
class ConsentDocument:
    """A document the payer must see and accept before the gateway takes the payment.

    ``id`` is stable (what the payer's checkbox sends back); ``title`` is Spanish; ``url`` is the
    gateway's own copy; ``version`` identifies what was shown (for Wompi the acceptance token,
    which it wants back with the transaction): store it with the payment as the proof of consent.
    """

    id: str
    title: str
    url: str
    version: str


@dataclass(frozen=True)
class PaymentRequest:
    """What a gateway needs to start one PSE payment.

    ``bank_code`` is empty when the gateway chooses the bank itself (``chooses_bank``).
    ``accepted_documents`` are the :meth:`PaymentGateway.documents` the payer accepted; ``None``
    (a caller that predates consent) makes the gateway use its current documents unasked.
    ``product_opening_date`` and ``beneficiary_document`` feed PSE's anti-fraud references of
    financial-services merchants; the beneficiary defaults to the payer.
    """

    reference: str  # ours, unique, never reused
    amount: int  # COP, integer pesos
    bank_code: str
    person_type: PersonType
    payer_document_type: str
    payer_document_number: str
    payer_name: str
    payer_email: str
    payer_phone: str
    description: str
    return_url: str
    ip: str  # the payer's, as the web layer saw it: never the server's
    user_agent: str = ""
    accepted_documents: tuple[ConsentDocument, ...] | None = None
    product_opening_date: date | None = None
    beneficiary_document: str = ""


@dataclass(frozen=True)
class GatewayTransaction:
    gateway_id: str  # the transaction id at the gateway
    reference: str
    status: GatewayStatus
    amount: int  # COP
    cus: str | None = None  # PSE's Código Único de Seguimiento
    bank_url: str | None = None  # where to send the payer (only while PENDING)
    bank_name: str | None = None
    status_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: Set (e.g. :data:`REVIEW_PARTIAL_APPROVAL`) when the answer must go to staff review and never
    #: be applied, whatever ``status`` says; ``status`` is then PENDING, never APPROVED.
    review_reason: str | None = None


@dataclass(frozen=True)
class VerifiedEvent:
    """What a webhook's signature proves, and nothing more.

    ``gateway_id``, ``status``, ``amount`` and ``sent_at`` are covered by the signature: an adapter
    refuses an event whose signature leaves one of them out. ``reference`` need not be: it only
    says which payment to look at, and that payment's stored gateway id (or, when it has none yet,
    the gateway's own answer) decides whether the event is about it. Nothing else of the event
    (CUS, bank URL, bank name, messages) is passed on.
    """

    gateway_id: str
    status: GatewayStatus
    amount: int  # COP
    sent_at: int  # epoch seconds
    reference: str  # unsigned: a lookup hint, never a fact


class GatewayError(Exception):
    """The gateway refused or failed; ``message`` is Spanish, for the member."""

    def __init__(self, message: str, *, code: str = "gateway_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class GatewayTimeout(GatewayError):
    """No usable answer (timeout, dropped connection, 5xx or unreadable answer to a create): the
    outcome is unknown, so the caller must not retry blindly; the poller finds out."""


class InvalidRequest(GatewayError):
    """The payment cannot be sent to this gateway as it is (missing email or phone, a document type
    PSE does not take for the person type...): caught before the payment is saved, never sent.
    ``message`` is Spanish and says what to do; ``code`` names the problem."""


class InvalidEvent(Exception):
    """A webhook whose signature, shape or age is wrong; never applied."""


class IgnoredEvent(Exception):
    """A genuine notification (the signature holds) of a kind the engine does not act on, e.g. a
    Wompi event type other than ``transaction.updated``: answer 200 so the gateway stops retrying,
    and apply nothing. Deliberately not an :class:`InvalidEvent`."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"ignored event type {event_type[:40]!r}")
        self.event_type = event_type[:40]


def missing_documents(documents: Iterable[ConsentDocument],
                      accepted_ids: Iterable[str]) -> list[ConsentDocument]:
    """The documents among ``documents`` whose id is not in ``accepted_ids``."""
    accepted = set(accepted_ids)
    return [document for document in documents if document.id not in accepted]


def check_payer(request: PaymentRequest) -> None:
    """PSE's own rules on the payer, shared by every gateway; raises :class:`InvalidRequest`."""
    if not request.payer_email.strip():
        raise InvalidRequest(
            "Para pagar por PSE necesitamos su correo electrónico, que no tenemos registrado. "
            "Actualícelo en la cooperativa o escriba uno para recibir el comprobante.",
            code="payer_email_missing")
    if not request.payer_phone.strip():
        raise InvalidRequest(
            "Para pagar por PSE necesitamos su número de celular, que no tenemos registrado. "
            "Por favor actualícelo en la cooperativa.", code="payer_phone_missing")
    allowed = PSE_DOCUMENT_TYPES.get(request.person_type, ())
    if request.payer_document_type.strip().upper() not in allowed:
        who = "una persona jurídica" if request.person_type == "juridica" else "una persona natural"
        raise InvalidRequest(
            f"PSE no acepta el tipo de documento {request.payer_document_type.strip().upper()} "
            f"para {who}. Use {', '.join(allowed) or 'otro tipo de persona'} o elija el otro "
            "tipo de persona.", code="document_type_not_allowed")


class PaymentGateway(Protocol):
    name: str
    #: True when the gateway's own checkout page asks the payer for the bank: the portal shows no
    #: bank list, ``list_banks`` answers ``[]`` and ``PaymentRequest.bank_code`` is empty.
    chooses_bank: bool

    def list_banks(self) -> list[Bank]:
        """The banks in the gateway's order, without the "A continuación seleccione su banco" filler."""

    def documents(self) -> list[ConsentDocument]:
        """What the payer must accept before paying (``[]`` when the gateway asks for nothing)."""

    def validate_request(self, request: PaymentRequest) -> None:
        """Raise :class:`InvalidRequest` (Spanish message) for a request this gateway would refuse;
        cheap and without I/O, so it runs before the payment is saved."""

    def create_transaction(self, request: PaymentRequest) -> GatewayTransaction:
        """Create the PSE transaction; the result carries ``bank_url`` when the payer can go on."""

    def get_transaction(self, gateway_id: str) -> GatewayTransaction:
        """Server-side status query by the gateway's id."""

    def find_by_reference(self, reference: str) -> GatewayTransaction | None:
        """Server-side lookup by our reference (after a create that timed out), None if unknown."""

    def verify_event(self, headers: Mapping[str, str], body: bytes, *, now: int) -> VerifiedEvent:
        """Check signature (constant time), shape and age of a webhook; raise InvalidEvent, also
        when the signature does not cover the transaction's id, status and amount, and
        IgnoredEvent for a genuine notification the engine does not act on."""
