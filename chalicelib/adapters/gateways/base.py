"""The payment gateway port: what the payment services need from any PSE gateway.

Adapters translate their provider's statuses into the four outcomes below, amounts into integer
COP, and raise the errors below; nothing provider-specific leaks past this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

GatewayStatus = Literal["PENDING", "APPROVED", "REJECTED", "FAILED"]
PersonType = Literal["natural", "juridica"]


@dataclass(frozen=True)
class Bank:
    code: str
    name: str


@dataclass(frozen=True)
class PaymentRequest:
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
    ip: str


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


class InvalidEvent(Exception):
    """A webhook whose signature, shape or age is wrong; never applied."""


class PaymentGateway(Protocol):
    name: str

    def list_banks(self) -> list[Bank]:
        """The banks in the gateway's order, without the "A continuación seleccione su banco" filler."""

    def create_transaction(self, request: PaymentRequest) -> GatewayTransaction:
        """Create the PSE transaction; the result carries ``bank_url`` when the payer can go on."""

    def get_transaction(self, gateway_id: str) -> GatewayTransaction:
        """Server-side status query by the gateway's id."""

    def find_by_reference(self, reference: str) -> GatewayTransaction | None:
        """Server-side lookup by our reference (after a create that timed out), None if unknown."""

    def verify_event(self, headers: Mapping[str, str], body: bytes, *, now: int) -> VerifiedEvent:
        """Check signature (constant time), shape and age of a webhook; raise InvalidEvent, also
        when the signature does not cover the transaction's id, status and amount."""
