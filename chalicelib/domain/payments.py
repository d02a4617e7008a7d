"""Payment rules without AWS: the state machine, amounts, references, the entities' transitions.

States (SPEC §3): CREATED → PENDING → APPROVED | REJECTED | FAILED | EXPIRED. A CREATED payment may
also jump to a final state (its create call timed out and the gateway already settled it). Final
states never change, except EXPIRED → APPROVED: the bank confirmed the debit after we gave up.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from chalicelib.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from chalicelib.domain.obligations import Obligation, ObligationChange

#: Colombia has kept UTC-5 without daylight saving since 1993: no tz database needed.
COLOMBIA = timezone(timedelta(hours=-5), "COT")

# --- states -----------------------------------------------------------------------------------

CREATED = "CREATED"
PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"

STATUSES = (CREATED, PENDING, APPROVED, REJECTED, FAILED, EXPIRED)
OPEN_STATUSES = frozenset({CREATED, PENDING})
FINAL_STATUSES = frozenset({APPROVED, REJECTED, FAILED, EXPIRED})
RETRYABLE_STATUSES = frozenset({REJECTED, FAILED, EXPIRED})

_TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({PENDING, APPROVED, REJECTED, FAILED, EXPIRED}),
    PENDING: frozenset({APPROVED, REJECTED, FAILED, EXPIRED}),
    EXPIRED: frozenset({APPROVED}),  # the money arrived late: it must still be applied
    APPROVED: frozenset(),
    REJECTED: frozenset(),
    FAILED: frozenset(),
}


REVIEW_FLAG = "REVIEW"  # Payment.review_flag while staff must look at it
EXPORT_READY = "READY"  # Payment.export_pending: approved, no export has claimed it yet
RECEIPT_MAX_ATTEMPTS = 8
LATE_APPROVAL = "approved_after_final"  # review reason: the gateway approved an ended payment


def can_transition(src: str, dst: str) -> bool:
    """Whether ``src → dst`` is a real change the machine allows (``PENDING → PENDING`` is not)."""
    return dst in _TRANSITIONS.get(src, frozenset())


def sources_of(dst: str) -> tuple[str, ...]:
    """Every status ``dst`` may be reached from: the condition of the transition's write."""
    return tuple(src for src in STATUSES if can_transition(src, dst))


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


# --- the lifecycle the member sees ----------------------------------------------------------------

#: The steps of a payment that goes well, in order. A later step that is not a payment status
#: (e.g. ``"APPLIED"``, once the core system's import confirms it) is added by appending its key
#: here (and its words to the texts), and by passing its time to :func:`lifecycle` among the
#: ``reached`` pairs; nothing else changes.
HAPPY_PATH: tuple[str, ...] = (CREATED, PENDING, APPROVED)
FAILURES = (REJECTED, FAILED, EXPIRED)


@dataclass(frozen=True)
class Step:
    key: str
    at: datetime | None  # None for a step not reached yet
    state: str  # "done" | "active" (in progress) | "upcoming" | "failed"
    current: bool  # the step the payment is at (aria-current="step")


def lifecycle(status: str, reached: Iterable[tuple[str, datetime]]) -> list[Step]:
    """The stepper of a payment: the happy path's steps reached (skipped ones left out), the one
    in progress, those still to come; or, for a refused payment, the steps reached and its end."""
    times: dict[str, datetime] = {}
    for key, at in reached:
        times.setdefault(key, at)  # the first time a step was reached
    if status not in times and times:  # a history written before the status (never expected)
        times[status] = max(times.values())

    def step(key: str, state: str, current: bool = False) -> Step:
        return Step(key, times.get(key) if state != "upcoming" else None, state, current)

    if status in FAILURES:
        done = [step(k, "done") for k in HAPPY_PATH if k in times and k not in (APPROVED, status)]
        return [*done, step(status, "failed", current=True)]
    furthest = max((i for i, k in enumerate(HAPPY_PATH) if k in times), default=0)
    finished = HAPPY_PATH[furthest] == APPROVED or furthest > HAPPY_PATH.index(APPROVED)
    steps = []
    for index, key in enumerate(HAPPY_PATH):
        if index < furthest:
            if key in times:
                steps.append(step(key, "done"))
        elif index == furthest:
            steps.append(step(key, "done" if finished else "active", current=True))
        else:
            steps.append(step(key, "upcoming"))
    return steps


# --- masking and dates -------------------------------------------------------------------------

MASK = "••••"
LONG_NUMBER = 6  # longer product numbers show only their last 4 characters


def mask_number(value: str, *, keep: int = 4, longer_than: int = LONG_NUMBER) -> str:
    """``"0012345678"`` → ``"•••• 5678"``; short values are shown whole."""
    value = value.strip()
    if len(value) <= longer_than:
        return value
    return f"{MASK} {value[-keep:]}"


def distinct_masks(numbers: Iterable[str]) -> dict[str, str]:
    """Each product number masked; where two would both read ``•••• 5123``, each also shows the
    fewest leading characters that tell them apart (``71•••• 5123``, ``72•••• 5123``)."""
    values = sorted({n.strip() for n in numbers})
    masks: dict[str, str] = {}
    for value in values:
        masked = mask_number(value)
        if masked == value:
            masks[value] = value
            continue
        twins = [o for o in values if o != value and mask_number(o) == masked]
        lead = 0
        while twins and lead < len(value) - 4:
            lead += 1
            twins = [o for o in twins if o[:lead] == value[:lead]]
        masks[value] = f"{value[:lead]}{masked}" if lead else masked
    return masks


def pesos(amount: int) -> str:
    """``1234567`` → ``$ 1.234.567``: integer pesos as Colombians write them (no centavos)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}$ {abs(int(amount)):,}".replace(",", ".")


def colombia_today(now: datetime) -> date:
    return now.astimezone(COLOMBIA).date()


def overdue_days(due_date: date, today: date) -> int:
    """Whole days past the due date (0 on the due date and before it)."""
    return max(0, (today - due_date).days)


# --- references and fingerprints ---------------------------------------------------------------

REFERENCE_PREFIX = "SV"
REFERENCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32: no 0/1/8/9
REFERENCE_RANDOM_CHARS = 12  # 60 bits; uniqueness is also enforced by a claim item


def new_reference(random_code: Callable[[int, str], str]) -> str:
    """``SV`` + 12 base32 characters from the injected random source (no ``|`` nor ``"``)."""
    return REFERENCE_PREFIX + random_code(REFERENCE_RANDOM_CHARS, REFERENCE_ALPHABET)


def is_reference(value: str) -> bool:
    body = value[len(REFERENCE_PREFIX):]
    return (value.startswith(REFERENCE_PREFIX) and len(body) == REFERENCE_RANDOM_CHARS
            and all(ch in REFERENCE_ALPHABET for ch in body))


def request_fingerprint(*, document_number: str, items: object, bank_code: object,
                        person_type: object) -> str:
    """What an Idempotency-Key promises: the same key must come with the same request.

    Total on any input (it is computed before validation, to recognise replays of refusals too).
    """
    lines = items if isinstance(items, (list, tuple)) else [items]
    canonical = json.dumps({"d": document_number, "b": bank_code, "p": person_type,
                            "i": sorted(json.dumps(line, default=str) for line in lines)},
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- errors -----------------------------------------------------------------------------------

class InvalidAmount(DomainError):
    status = 400
    code = "invalid_amount"


class InvalidBank(DomainError):
    status = 400
    code = "invalid_bank"


class PaymentPending(DomainError):
    """PSE's double-payment rule: ``extra`` carries ``cus`` and ``reference`` for the client."""

    status = 409
    code = "payment_pending"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class ObligationNotFound(NotFound):
    code = "obligation_not_found"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class InvalidTransition(DomainError):
    """A transition the state machine forbids (a programming error: callers check first)."""

    status = 409
    code = "invalid_transition"


class GatewayFailure(DomainError):
    status = 502
    code = "gateway_error"


# --- amounts and request shape --------------------------------------------------------------------

MAX_ITEMS = 20  # far above a member's obligations; keeps one transaction well under 100 actions
PERSON_TYPES = ("natural", "juridica")
BANK_PLACEHOLDER_CODE = "0"
AMOUNT_NOT_INTEGER = "El valor a pagar debe ser un número entero de pesos, sin centavos."


@dataclass(frozen=True)
class Limits:
    minimum: int
    maximum: int


def parse_amount(raw: object) -> int:
    """An amount as the API receives it: an integer of pesos, never a string, float or boolean."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidAmount(AMOUNT_NOT_INTEGER, field="amount")
    if raw <= 0:
        raise InvalidAmount("El valor a pagar debe ser mayor que cero.", field="amount")
    return raw


#: How members write pesos: ``900000``, ``900.000``, ``$ 900.000``, ``$900.000,00`` (zero cents).
#: ASCII digits only: ``str.isdigit`` and ``int`` also take ``²`` or Arabic-Indic digits.
_PESOS_TEXT = re.compile(r"\$?[ \u00a0]*([0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,12})(,[0-9]{1,2})?", re.ASCII)
AMOUNT_FORMAT = ("Escriba el valor en pesos con números, por ejemplo 150000, 150.000 o "
                 "$ 150.000.")
AMOUNT_CENTS = "Escriba el valor en pesos, sin centavos (los pagos por PSE son en pesos enteros)."


def parse_pesos(raw: object) -> int:
    """An amount as a member types it in a page → integer pesos; InvalidAmount otherwise.

    The one parser of typed amounts: the obligations form and the summary's hidden fields.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    match = _PESOS_TEXT.fullmatch(text) if len(text) <= 24 else None
    if not match:
        raise InvalidAmount(AMOUNT_FORMAT, field="amount")
    if match.group(2) and int(match.group(2)[1:]):
        raise InvalidAmount(AMOUNT_CENTS, field="amount")
    return parse_amount(int(match.group(1).replace(".", "")))


def check_item_amount(amount: int, limits: Limits, *, description: str) -> int:
    """One obligation's amount: between its minimum and its maximum (the payoff for loans)."""
    parse_amount(amount)
    if limits.maximum <= 0:
        raise InvalidAmount(f"La obligación «{description}» no tiene saldo para pagar.",
                            field="amount")
    if amount < limits.minimum or amount > limits.maximum:
        raise InvalidAmount(
            f"El valor para «{description}» debe estar entre {pesos(max(limits.minimum, 1))} y "
            f"{pesos(limits.maximum)}.", field="amount")
    return amount


def check_total(total: int, limits: Limits) -> int:
    """The whole payment: within the gateway's minimum (1.500 COP by default) and maximum."""
    if total < limits.minimum:
        raise InvalidAmount(f"El total a pagar debe ser de al menos {pesos(limits.minimum)}.",
                            field="amount")
    if total > limits.maximum:
        raise InvalidAmount(f"El total a pagar no puede superar {pesos(limits.maximum)} en un solo "
                            "pago por PSE.", field="amount")
    return total


def check_items_shape(items: Sequence[tuple[object, object]]) -> list[tuple[str, int]]:
    """At least one line, at most :data:`MAX_ITEMS`, no obligation twice, integer amounts."""
    lines = list(items) if isinstance(items, (list, tuple)) else []
    if not lines:
        raise InvalidInput("Marque al menos una obligación para pagar.", field="items")
    if len(lines) > MAX_ITEMS:
        raise InvalidInput(f"Puede pagar hasta {MAX_ITEMS} obligaciones en un solo pago.",
                           field="items")
    seen: set[str] = set()
    checked: list[tuple[str, int]] = []
    for obligation_id, amount in lines:
        if not isinstance(obligation_id, str) or not 1 <= len(obligation_id) <= 64:
            raise InvalidInput("Una de las obligaciones indicadas no es válida.",
                               field="obligation_id")
        if obligation_id in seen:
            raise InvalidInput("Cada obligación puede aparecer una sola vez en el pago.",
                               field="obligation_id")
        seen.add(obligation_id)
        checked.append((obligation_id, parse_amount(amount)))
    return checked


def check_bank_code(bank_code: object, known_codes: Iterable[str]) -> str:
    """The bank must be one of the gateway's list; ACH's placeholder ``0`` is never a bank."""
    if not isinstance(bank_code, str) or not bank_code.strip():
        raise InvalidBank("Seleccione su banco.", field="bank_code")
    code = bank_code.strip()
    if code == BANK_PLACEHOLDER_CODE or code not in set(known_codes):
        raise InvalidBank("Seleccione un banco de la lista.", field="bank_code")
    return code


def check_person_type(person_type: object) -> str:
    if person_type not in PERSON_TYPES:
        raise InvalidInput("Seleccione el tipo de persona: natural o jurídica.", field="person_type")
    return str(person_type)


def payment_description(lines: Sequence[tuple[str, str]]) -> str:
    """A short text for the bank statement (ACH: no ``|`` nor ``"``; Wompi: ≤ 30 characters).

    ``lines`` are ``(obligation type as members read it, product number)`` pairs.
    """
    if len(lines) == 1:
        label, product = lines[0]
        text = f"{label} {product.strip()[-4:]}"
    else:
        text = f"Pago de {len(lines)} obligaciones"
    return "".join(ch for ch in text if ch not in '|"')[:30]


def decrement(value: int, paid: int) -> int:
    """A balance after a payment, never below zero (paying a loan off beyond the instalment)."""
    return max(0, int(value) - int(paid))


# --- entities ---------------------------------------------------------------------------------

@dataclass
class PaymentItem:
    """One obligation paid, as it was when the payment locked it: ``*_before`` are the balances
    an approval is applied over; ``parts`` the instalment's parts left then, in the order of
    application (``[[part, pesos], ...]``), so a later import never changes a past receipt."""

    obligation_id: str
    type: str
    product_number: str  # as the core system wrote it; masked when shown
    description: str
    amount: int
    due_before: int | None = None
    minimum_before: int | None = None
    maximum_before: int | None = None
    parts: list[list[Any]] | None = None
    opened_on: str | None = None  # the obligation's product opening date (PSE's anti-fraud data)
    obligation_version: int | None = None  # the obligation's version its lock wrote

    @property
    def held(self) -> bool:
        """Whether the item still knows the obligation as its lock left it (older payments lack
        the version: their obligations are read again before they are settled)."""
        return self.due_before is not None and self.obligation_version is not None


@dataclass(frozen=True)
class StatusChange:
    status: str
    at: datetime


@dataclass
class Payment:
    """One PSE payment attempt of a member; stored CREATED before the gateway is called.

    ``version`` counts its stored writes: each transition is written only over the version it was
    decided from, so a repeated or concurrent notification never applies it twice."""

    payment_id: str  # 128-bit random, URL-safe: the receipt's key
    reference: str  # ours, sent to the gateway, never reused
    document_number: str
    payer_name: str
    status: str
    amount: int  # COP, integer pesos
    items: list[PaymentItem]
    bank_code: str
    person_type: str  # natural | juridica
    description: str
    ip: str
    gateway: str  # the gateway it was started with: it is reconciled there
    created_at: datetime
    updated_at: datetime
    status_history: list[StatusChange]
    document_type: str = "CC"
    payer_email: str | None = None
    bank_name: str | None = None
    gateway_id: str | None = None
    cus: str | None = None  # PSE's Código Único de Seguimiento
    bank_url: str | None = None
    status_message: str | None = None
    approved_at: datetime | None = None
    idempotency_key: str | None = None
    next_poll_at: datetime | None = None
    poll_shard: str | None = None
    review_reason: str | None = None
    review_flag: str | None = None
    receipt_emailed: bool = False
    receipt_attempts: int = 0
    exported_at: datetime | None = None
    export_pending: str | None = None  # "READY" from approval until an export claims it
    export_id: str | None = None
    core_applied_at: datetime | None = None  # confirmed by the core system's import
    original_amount: int | None = None  # before staff applied the gateway's amount
    poll_horizon_at: datetime | None = None  # staff kept it pending: the new horizon
    review_resolution: str | None = None  # apply | reject | keep_pending (the last one)
    review_resolved_by: str | None = None  # staff:<identity>
    review_resolved_at: datetime | None = None
    review_note: str | None = None
    version: int = 0
    #: What the payer accepted before paying: ``{"documents": [{"id", "title", "url",
    #: "version"}], "accepted_at", "ip", "user_agent"}`` (see services/payments/terms.py).
    consent: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reached_bank(self) -> bool:
        return self.gateway_id is not None

    def move_to(self, target: str, at: datetime) -> None:
        """The transition ``status → target`` (InvalidTransition when the machine forbids it)."""
        if not can_transition(self.status, target):
            raise InvalidTransition(f"{self.status} → {target}")
        self.status, self.updated_at = target, at
        self.status_history = [*self.status_history, StatusChange(status=target, at=at)]
        if target == APPROVED:
            self.approved_at = at
            self.export_pending = EXPORT_READY  # back office: the export queue
        if target != PENDING:
            self.leave_poller()
            self.receipt_emailed = False

    def poll_at(self, shard: str, at: datetime) -> None:
        self.poll_shard, self.next_poll_at = shard, at

    def leave_poller(self) -> None:
        self.poll_shard = self.next_poll_at = None

    def flag(self, reason: str, at: datetime) -> None:
        """Mark for staff review (nothing applied); an open payment leaves the poller."""
        self.review_flag, self.review_reason, self.updated_at = REVIEW_FLAG, reason, at
        if self.is_open:
            self.leave_poller()

    def resolve_review(self, review: Review) -> None:
        """Record a staff decision and clear the flag."""
        self.review_resolution, self.review_resolved_by = review.action, review.actor
        self.review_resolved_at, self.review_note = review.at, review.note
        self.review_flag = self.review_reason = None
        self.updated_at = review.at

    @property
    def holds_its_obligations(self) -> bool:
        """Open, with every item as its lock left it: an ending needs no read of the obligations."""
        return self.is_open and all(item.held for item in self.items)

    @property
    def receipt_owed(self) -> bool:
        """A final payment that reached the bank (or got approved) owes its payer one receipt."""
        return (is_final(self.status) and not self.receipt_emailed and bool(self.payer_email)
                and (self.status == APPROVED or self.reached_bank))

    def claim_receipt(self) -> None:
        """The receipt is being sent (a version-checked write: two senders cannot both claim)."""
        self.receipt_emailed = True
        self.leave_poller()

    def receipt_failed(self, shard: str, retry_at: datetime) -> bool:
        """Un-claim after a failed send and count it; False once the attempts are spent (the
        poller retries at ``retry_at`` otherwise)."""
        self.receipt_emailed = False
        self.receipt_attempts += 1
        if self.receipt_attempts < RECEIPT_MAX_ATTEMPTS:
            self.poll_at(shard, retry_at)
            return True
        return False


@dataclass(frozen=True)
class Review:
    """A staff decision on a flagged payment."""

    action: str  # apply | reject | keep_pending
    actor: str  # staff:<identity>
    at: datetime
    note: str


def settle_obligation(payment: Payment, item: PaymentItem, obligation: Obligation | None, *,
                      approve: bool, at: datetime) -> ObligationChange | None:
    """What ending ``payment`` does to the obligation of ``item``: an approval applies the amount
    once, never below zero; the lock this payment holds is released. ``obligation`` None: it is
    still as the payment's lock left it (the item's balances and version)."""
    if obligation is None:
        version, due, minimum, maximum = (int(item.obligation_version or 0), int(item.due_before or 0),
                                          int(item.minimum_before or 0), int(item.maximum_before or 0))
        ours, applied, has_map = True, False, True
    else:
        version = obligation.version
        due, minimum, maximum = obligation.amount_due, obligation.minimum_amount, obligation.maximum_amount
        ours = obligation.pending_payment_id == payment.payment_id
        applied = payment.payment_id in (obligation.portal_payments or {})
        has_map = obligation.portal_payments is not None
    balances: tuple[int, int, int] | None = None
    entry: tuple[str, dict[str, Any]] | None = None
    if approve and not applied:
        paid = int(item.amount)
        balances = (decrement(due, paid), decrement(minimum, paid), decrement(maximum, paid))
        entry = (payment.payment_id, {"amount": paid, "at": at.isoformat(),
                                      "reference": payment.reference})
    if balances is None and not ours:
        return None
    return ObligationChange(payment.document_number, item.obligation_id, version, balances=balances,
                            portal_payment=entry, has_portal_payments=has_map, release=ours)


# --- what the engine stores besides payments --------------------------------------------------

@dataclass
class GatewayEventRecord:
    """A verified gateway notification, stored once per (gateway, transaction, status)."""

    event_id: str
    gateway: str
    body: str
    received_at: datetime
    reference: str | None = None
    payment_id: str | None = None
    outcome: str = ""  # applied | stale | unchanged | unknown_reference | review


def idempotency_claim_key(document_number: str, key: str) -> str:
    return f"{document_number}#{key}"


def reference_claim_key(reference: str) -> str:
    return f"reference#{reference}"


@dataclass
class Claim:
    """A key taken by one payment: an Idempotency-Key (for a day) or a reference (for ever)."""

    key: str
    payment_id: str
    created_at: datetime
    fingerprint: str | None = None  # the request an Idempotency-Key came with
    expires_at: datetime | None = None

    @property
    def label(self) -> str:
        return "reference" if self.key.startswith("reference#") else "idempotency"

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now
