"""PlacetoPay (Evertec) WebCheckout as the PSE gateway: REST, JSON (reference/pse.md §3.2).

Every call carries the ``auth`` object: ``login``, ``tranKey`` = Base64(SHA-256(nonce + seed +
secretKey)) over the raw nonce bytes and the raw digest, ``nonce`` = Base64(nonce), ``seed`` = now
in ISO 8601 (PlacetoPay refuses a seed more than 5 minutes off). ``POST /api/session`` creates the
session and answers its ``requestId`` and ``processUrl``: the checkout page, where the payer picks
the bank (so this gateway owns the bank choice). ``POST /api/session/{requestId}`` is the status.

The notification (``{status: {status, reason, message, date}, requestId, reference, signature}``)
is signed over ``requestId + status + date + secretKey``: SHA-1 hex (legacy) or ``sha256:`` + the
SHA-256 hex; both are taken, compared in constant time. It is sent once and never retried, and it
signs no amount: :meth:`PlacetoPayGateway.verify_event` therefore confirms the signed request id
with the status query, whose status and amount are what it returns. The poller is the safety net
for a lost notification.

A partial approval (``APPROVED_PARTIAL``) is never reported as APPROVED: it stays PENDING with a
``review_reason``, for staff to resolve.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalicelib.adapters.gateways.base import (
    MSG_CREATE,
    MSG_QUERY,
    MSG_TIMEOUT,
    REVIEW_PARTIAL_APPROVAL,
    Bank,
    ConsentDocument,
    GatewayError,
    GatewayStatus,
    GatewayTransaction,
    InvalidEvent,
    InvalidRequest,
    PaymentRequest,
    VerifiedEvent,
    check_payer,
    clean_text,
)
from chalicelib.adapters.gateways.http import JsonHttp
from chalicelib.config import COLOMBIA
from chalicelib.security import bounded_json

if TYPE_CHECKING:
    from chalicelib.config import Settings

log = logging.getLogger(__name__)

CURRENCY = "COP"
#: The name of the secret that holds the site's secret key (not a secret itself).
SECRET_NAME = "PLACETOPAY_SECRET_KEY"  # noqa: S105  # nosec B105
NONCE_BYTES = 16
MAX_DESCRIPTION = 250
MAX_REFERENCE = 32
MAX_EVENT_BYTES = 16 * 1024
MAX_FUTURE_SKEW_SECONDS = 300
SHA256_PREFIX = "sha256:"

#: PlacetoPay's session states → (the port's status, a review reason or None).
STATUS_MAP: dict[str, tuple[GatewayStatus, str | None]] = {
    "PENDING": ("PENDING", None),
    "APPROVED": ("APPROVED", None),
    "REJECTED": ("REJECTED", None),
    "APPROVED_PARTIAL": ("PENDING", REVIEW_PARTIAL_APPROVAL),
    "PARTIAL_EXPIRED": ("REJECTED", None),  # final: the partial payments are reversed
}

#: Our document types → PlacetoPay's (it calls a passport PPN).
DOCUMENT_TYPES = {"CC": "CC", "CE": "CE", "TI": "TI", "PP": "PPN", "NIT": "NIT"}


def map_status(state: Any) -> tuple[GatewayStatus, str | None]:
    """PlacetoPay's state → (the port's status, review reason); ValueError when undocumented."""
    try:
        return STATUS_MAP[state]
    except (KeyError, TypeError):
        raise ValueError(f"unknown PlacetoPay status {state!r}") from None


def tran_key(nonce: bytes, seed: str, secret_key: str) -> str:
    """Base64 of the raw SHA-256 digest of the raw nonce, the seed and the secret key."""
    digest = hashlib.sha256(nonce + seed.encode("utf-8") + secret_key.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def auth_object(login: str, secret_key: str, nonce: bytes, seed: str) -> dict[str, str]:
    return {"login": login, "tranKey": tran_key(nonce, seed, secret_key),
            "nonce": base64.b64encode(nonce).decode("ascii"), "seed": seed}


def notification_signature(request_id: str, status: str, date: str, secret_key: str, *,
                           sha256: bool) -> str:
    """``sha256:`` + SHA-256 hex, or the legacy SHA-1 hex, of requestId + status + date + secret."""
    raw = f"{request_id}{status}{date}{secret_key}".encode()
    if sha256:
        return SHA256_PREFIX + hashlib.sha256(raw).hexdigest()
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()  # PlacetoPay's legacy form


def split_name(full_name: str) -> tuple[str, str]:
    """(name, surname) for PlacetoPay's payer: the last word is taken as the surname."""
    words = full_name.split()
    if len(words) < 2:
        return full_name.strip(), ""
    return " ".join(words[:-1]), words[-1]


def _iso_epoch(text: Any) -> int:
    if not isinstance(text, str) or not text:
        raise ValueError("date is missing")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("date has no offset")
    return int(moment.timestamp())


def _whole_pesos(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("amount is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("amount is not a number") from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise ValueError("amount is not a whole number of pesos")
    return int(amount)


class PlacetoPayGateway:
    """:class:`~chalicelib.adapters.gateways.base.PaymentGateway` for PlacetoPay WebCheckout.

    ``clock`` (aware datetimes) and ``nonce`` (raw random bytes) are injectable so the ``auth``
    object is reproducible in tests; ``http`` is as for :class:`JsonHttp`.
    """

    name = "placetopay"
    chooses_bank = True

    def __init__(self, base_url: str, login: str, secret_key: str, *, notification_url: str = "",
                 expiration_seconds: int = 30 * 60, timeout_seconds: float = 10,
                 http: Any = None, max_event_age_seconds: int = 25 * 3600,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 nonce: Callable[[int], bytes] = os.urandom) -> None:
        self._base_url = base_url.rstrip("/")
        self._login = login
        self._secret_key = secret_key
        self._notification_url = notification_url
        self._expiration = timedelta(seconds=expiration_seconds)
        self._max_event_age = max_event_age_seconds
        self._clock = clock
        self._nonce = nonce
        self._json = JsonHttp("placetopay", http=http, timeout_seconds=timeout_seconds,
                              detail=_status_detail)

    def __repr__(self) -> str:  # never show the secret key
        return f"PlacetoPayGateway(base_url={self._base_url!r})"

    # --- the port ---------------------------------------------------------------------------

    def list_banks(self) -> list[Bank]:
        return []  # the checkout page asks the payer

    def documents(self) -> list[ConsentDocument]:
        return []  # PlacetoPay's own checkout page shows its terms

    def validate_request(self, request: PaymentRequest) -> None:
        check_payer(request)
        if request.payer_document_type.strip().upper() not in DOCUMENT_TYPES:
            raise InvalidRequest("PlacetoPay no acepta ese tipo de documento.",
                                 code="document_type_not_allowed")

    def auth(self) -> dict[str, str]:
        seed = self._clock().astimezone(COLOMBIA).isoformat(timespec="seconds")
        return auth_object(self._login, self._secret_key, self._nonce(NONCE_BYTES), seed)

    def build_session_payload(self, request: PaymentRequest) -> dict[str, Any]:
        """The JSON body of ``POST /api/session``, ``auth`` included."""
        name, surname = split_name(request.payer_name)
        expiration = (self._clock() + self._expiration).astimezone(COLOMBIA)
        payload: dict[str, Any] = {
            "auth": self.auth(),
            "locale": "es_CO",
            "payer": {
                "document": request.payer_document_number,
                "documentType": DOCUMENT_TYPES[request.payer_document_type.strip().upper()],
                "name": name,
                "surname": surname,
                "email": request.payer_email.strip(),
                "mobile": request.payer_phone.strip(),
            },
            "payment": {
                "reference": request.reference,
                "description": (clean_text(request.description, MAX_DESCRIPTION)
                                or f"Pago {request.reference}"),
                "amount": {"currency": CURRENCY, "total": int(request.amount)},
            },
            "expiration": expiration.isoformat(timespec="seconds"),
            "returnUrl": request.return_url,
            "ipAddress": request.ip,
            "userAgent": request.user_agent or "Sucursal Virtual",
        }
        if self._notification_url:
            payload["notificationUrl"] = self._notification_url
        return payload

    def create_transaction(self, request: PaymentRequest) -> GatewayTransaction:
        self.validate_request(request)
        answer = self._post("/api/session", self.build_session_payload(request), failure=MSG_CREATE,
                            late=MSG_TIMEOUT)
        request_id = answer.get("requestId")
        process_url = answer.get("processUrl")
        state = answer.get("status")
        if (isinstance(request_id, bool) or not isinstance(request_id, (int, str))
                or not str(request_id).isdigit() or not isinstance(process_url, str)
                or not process_url.startswith(("https://", "http://"))
                or not isinstance(state, dict) or state.get("status") != "OK"):
            log.error("placetopay session answer is malformed or not OK: %s", _status_detail(answer))
            raise GatewayError(MSG_CREATE, code="gateway_malformed")
        return GatewayTransaction(gateway_id=str(request_id), reference=request.reference,
                                  status="PENDING", amount=int(request.amount),
                                  bank_url=process_url, raw=answer)

    def get_transaction(self, gateway_id: str) -> GatewayTransaction:
        if not gateway_id.isdigit():
            raise GatewayError(MSG_QUERY, code="not_found")
        answer = self._post(f"/api/session/{quote(gateway_id, safe='')}", {"auth": self.auth()},
                            failure=MSG_QUERY, late=MSG_QUERY)
        try:
            return self.parse_session(answer)
        except ValueError as exc:
            log.error("placetopay session %s is malformed: %s", gateway_id, exc)
            raise GatewayError(MSG_QUERY, code="gateway_malformed") from exc

    def find_by_reference(self, reference: str) -> GatewayTransaction | None:
        """WebCheckout has no search by reference: a session whose creation answer was lost is
        unknown here (its payer never got the checkout URL, so nothing can be paid on it)."""
        return None

    def parse_session(self, answer: Mapping[str, Any]) -> GatewayTransaction:
        """A ``getRequestInformation`` answer → the port's transaction; ValueError if malformed."""
        request_id = answer.get("requestId")
        if isinstance(request_id, bool) or not str(request_id).isdigit():
            raise ValueError("requestId is missing or not a number")
        state = answer.get("status")
        if not isinstance(state, dict):
            raise ValueError("status is missing")
        status, review = map_status(state.get("status"))
        request = answer.get("request")
        payment = request.get("payment") if isinstance(request, dict) else None
        amount = payment.get("amount") if isinstance(payment, dict) else None
        reference = payment.get("reference") if isinstance(payment, dict) else None
        if not isinstance(reference, str) or not reference:
            raise ValueError("request.payment.reference is missing")
        if not isinstance(amount, dict) or amount.get("currency") != CURRENCY:
            raise ValueError("request.payment.amount is missing or not in COP")
        total = _whole_pesos(amount.get("total"))
        attempts = answer.get("payment")
        attempts = [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []
        approved = [a for a in attempts
                    if isinstance(a.get("status"), dict) and a["status"].get("status") == "APPROVED"]
        last = (approved or attempts or [{}])[-1]
        cus = last.get("authorization") or last.get("receipt")
        bank = last.get("issuerName")
        message = state.get("message")
        return GatewayTransaction(
            gateway_id=str(request_id), reference=reference, status=status, amount=total,
            cus=str(cus) if cus else None,
            bank_name=bank if isinstance(bank, str) and bank else None,
            status_message=message if isinstance(message, str) and message else None,
            raw=answer, review_reason=review)

    def verify_event(self, headers: Mapping[str, str], body: bytes, *, now: int) -> VerifiedEvent:
        try:
            event = bounded_json.loads(body, max_bytes=MAX_EVENT_BYTES)
        except ValueError as exc:
            raise InvalidEvent(f"body is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(event, dict):
            raise InvalidEvent("body is not a JSON object")
        request_id, state, signature = (event.get("requestId"), event.get("status"),
                                        event.get("signature"))
        if isinstance(request_id, bool) or not str(request_id).isdigit():
            raise InvalidEvent("'requestId' is missing or not a number")
        if not isinstance(state, dict) or not isinstance(state.get("status"), str):
            raise InvalidEvent("'status.status' is missing or not a string")
        date = state.get("date")
        if not isinstance(date, str) or not date:
            raise InvalidEvent("'status.date' is missing or not a string")
        if not isinstance(signature, str) or not signature:
            raise InvalidEvent("'signature' is missing or not a string")
        claimed = signature.strip().lower()
        expected = notification_signature(str(request_id), state["status"], date,
                                          self._secret_key,
                                          sha256=claimed.startswith(SHA256_PREFIX))
        if not hmac.compare_digest(expected.encode(), claimed.encode()):
            raise InvalidEvent("signature does not match (wrong secret key or tampered notice)")
        try:
            sent_at = _iso_epoch(date)
        except ValueError as exc:
            raise InvalidEvent(f"'status.date': {exc}") from None
        if now - sent_at > self._max_event_age:
            raise InvalidEvent(f"notification is stale: {now - sent_at}s old")
        if sent_at - now > MAX_FUTURE_SKEW_SECONDS:
            raise InvalidEvent(f"notification is {sent_at - now}s in the future")
        try:
            map_status(state["status"])
        except ValueError as exc:
            raise InvalidEvent(f"status.status: {exc}") from None
        # The amount is not signed: the session's own answer (authenticated, over TLS) gives it.
        try:
            confirmed = self.get_transaction(str(request_id))
        except GatewayError as exc:
            raise InvalidEvent(f"the session could not be confirmed: {exc.code}") from exc
        reference = event.get("reference")
        return VerifiedEvent(gateway_id=confirmed.gateway_id, status=confirmed.status,
                             amount=confirmed.amount, sent_at=sent_at,
                             reference=reference if isinstance(reference, str) else "")

    # --- HTTP -------------------------------------------------------------------------------

    def _post(self, path: str, payload: Mapping[str, Any], *, failure: str,
              late: str) -> dict[str, Any]:
        return self._json.call("POST", self._base_url + path, path, failure=failure, late=late,
                               headers={}, payload=payload)


def _status_detail(decoded: Any) -> str:
    state = decoded.get("status") if isinstance(decoded, dict) else None
    if not isinstance(state, dict):
        return ""
    return f"{state.get('status')} {state.get('reason')} {str(state.get('message'))[:200]}"


_instances: dict[tuple[Any, ...], PlacetoPayGateway] = {}
_instances_lock = threading.Lock()


def from_settings(settings: Settings) -> PlacetoPayGateway:
    """The stage's PlacetoPay gateway, one per process and configuration (keeps the pool open)."""
    from chalicelib.adapters.secrets import get_secret

    values = (settings.placetopay_base_url, settings.placetopay_login,
              get_secret(settings, SECRET_NAME), settings.placetopay_notification_url,
              settings.gateway_pending_expiry_seconds, settings.webhook_max_age_seconds)
    key = tuple(hashlib.sha256(str(v).encode()).hexdigest() for v in values)
    with _instances_lock:
        gateway = _instances.get(key)
        if gateway is None:
            base_url, login, secret_key, notification_url, expiration, max_age = values
            gateway = PlacetoPayGateway(str(base_url), str(login), str(secret_key),
                                        notification_url=str(notification_url),
                                        expiration_seconds=int(expiration),
                                        max_event_age_seconds=int(max_age))
            _instances[key] = gateway
        return gateway
