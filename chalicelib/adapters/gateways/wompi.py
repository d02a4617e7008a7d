"""Wompi (Bancolombia) as the PSE gateway: REST API v1, JSON, urllib3 (imported lazily).

Protocol (reference/pse.md §3.1): the two documents the payer accepts (end-user terms and
personal-data authorization) and their acceptance tokens from ``GET /merchants/{public_key}``;
banks from ``GET /pse/financial_institutions``; ``POST /transactions`` with payment method PSE, the
integrity signature and, as PSE asks of financial-services merchants, ``reference_one`` (the payer's
IP), ``reference_two`` (the product's opening date) and ``reference_three`` (the beneficiary's
document); the bank URL appears in ``payment_method.extra.async_payment_url``, sometimes only after
the creation answer, so it is polled for; events are signed with a plain SHA-256 checksum over the
values their own ``signature.properties`` name, and carry the environment ("test" / "prod") that
must be the stage's. A ``transaction.updated`` event is accepted only when those properties cover
the transaction's id, status and amount, and only those three values (plus the unsigned reference,
as a lookup hint) leave :meth:`WompiGateway.verify_event`; other genuine event types are ignored.

Secrets (private key, events and integrity secrets) never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from chalicelib.adapters.gateways.base import (
    MSG_BANKS,
    MSG_CREATE,
    MSG_QUERY,
    MSG_TIMEOUT,
    Bank,
    ConsentDocument,
    GatewayError,
    GatewayStatus,
    GatewayTimeout,
    GatewayTransaction,
    IgnoredEvent,
    InvalidEvent,
    InvalidRequest,
    PaymentRequest,
    VerifiedEvent,
    check_payer,
    clean_text,
)
from chalicelib.adapters.gateways.http import JsonHttp
from chalicelib.security import bounded_json

if TYPE_CHECKING:
    from chalicelib.config import Settings

log = logging.getLogger(__name__)

CURRENCY = "COP"
FILLER_BANK_CODE = "0"
EVENT_TYPE = "transaction.updated"
MAX_DESCRIPTION = 30  # the payment-methods page now says 64; the sandbox page still says 30
MAX_REFERENCE_FIELD = 64
ENVIRONMENTS = ("test", "prod")
#: The consent documents of ``GET /merchants/{public_key}``: (our id, Wompi's field, Spanish title).
DOCUMENTS = (
    ("end_user_policy", "presigned_acceptance",
     "Reglamento de uso y política de privacidad de Wompi"),
    ("personal_data_auth", "presigned_personal_data_auth",
     "Autorización para el tratamiento de datos personales"),
)
MAX_FUTURE_SKEW_SECONDS = 300
MAX_EVENT_BYTES = 64 * 1024
#: What an event's signature must cover before anything in it is believed (reference/pse.md §3.1).
REQUIRED_PROPERTIES = ("transaction.id", "transaction.status", "transaction.amount_in_cents")
_TRANSACTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: A URL we send a payer to (bank, document): http(s), a host, no space nor control character.
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?")

#: Wompi's statuses → the port's. VOIDED only happens to cards, but is final and not a payment.
STATUS_MAP: dict[str, GatewayStatus] = {
    "PENDING": "PENDING",
    "APPROVED": "APPROVED",
    "DECLINED": "REJECTED",
    "VOIDED": "REJECTED",
    "ERROR": "FAILED",
}

MSG_DOCUMENTS = ("No se pudieron obtener los términos de uso de Wompi, por favor intente más "
                 "tarde")
MSG_TERMS = ("Para pagar debe aceptar el reglamento de uso y la autorización de tratamiento de datos "
             "personales de Wompi.")


def map_status(wompi_status: str) -> GatewayStatus:
    """Wompi's status → the port's; ``ValueError`` for a status Wompi does not document."""
    try:
        return STATUS_MAP[wompi_status]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Wompi status {wompi_status!r}") from None


def integrity_signature(reference: str, amount_in_cents: int, currency: str, secret: str,
                        expiration_time: str | None = None) -> str:
    """``sha256(reference + amount_in_cents + currency [+ expiration_time] + secret)``, hex."""
    raw = f"{reference}{amount_in_cents}{currency}{expiration_time or ''}{secret}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def clean_description(text: str, fallback: str) -> str:
    """:func:`clean_text` within Wompi's 30 characters, ``fallback`` when nothing is left."""
    return clean_text(text, MAX_DESCRIPTION) or fallback[:MAX_DESCRIPTION]


def environment_of(public_key: str) -> str:
    """The environment a key belongs to: ``prod`` for ``pub_prod_…``, else ``test``."""
    return "prod" if public_key.startswith("pub_prod_") else "test"


def _signed_value(data: Mapping[str, Any], path: str) -> str:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidEvent(f"signed property {path!r} is missing from data")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (str, int)):
        raise InvalidEvent(f"signed property {path!r} is a {type(node).__name__}, "
                           "expected a string or an integer")
    return str(node)


def event_checksum(data: Mapping[str, Any], properties: list[str], timestamp: int,
                   secret: str) -> str:
    """Wompi's event checksum: plain SHA-256 (not HMAC) of the values, the timestamp, the secret."""
    raw = "".join(_signed_value(data, path) for path in properties) + str(timestamp) + secret
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _error_detail(decoded: Any) -> str:
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return json.dumps(error, ensure_ascii=False) if error else ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


class WompiGateway:
    """:class:`~chalicelib.adapters.gateways.base.PaymentGateway` for Wompi.

    ``http`` is anything with urllib3's ``request(method, url, body=, headers=, timeout=,
    retries=, redirect=)`` returning an object with ``status`` and ``data``; by default a
    ``urllib3.PoolManager`` created on first use. ``sleep`` and ``monotonic`` are injectable so the
    polling for the bank URL is testable without waiting.
    """

    name = "wompi"
    chooses_bank = False

    def __init__(self, base_url: str, public_key: str, private_key: str, events_secret: str,
                 integrity_secret: str, *, environment: str | None = None,
                 timeout_seconds: float = 10, http: Any = None,
                 max_event_age_seconds: int = 25 * 3600,
                 acceptance_ttl_seconds: float = 300,
                 bank_names_ttl_seconds: float = 6 * 3600,
                 poll_attempts: int = 10, poll_interval_seconds: float = 0.3,
                 poll_budget_seconds: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._base_url = base_url.rstrip("/")
        self._public_key = public_key
        self._private_key = private_key
        self._events_secret = events_secret
        self._integrity_secret = integrity_secret
        self._environment = environment or environment_of(public_key)
        if self._environment not in ENVIRONMENTS:
            raise ValueError(f"Wompi environment must be one of {ENVIRONMENTS}")
        self._json = JsonHttp("wompi", http=http, timeout_seconds=timeout_seconds,
                              detail=_error_detail)
        self._max_event_age = max_event_age_seconds
        self._acceptance_ttl = acceptance_ttl_seconds
        self._bank_names_ttl = bank_names_ttl_seconds
        self._poll_attempts = poll_attempts
        self._poll_interval = poll_interval_seconds
        self._poll_budget = poll_budget_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._documents: list[ConsentDocument] | None = None
        self._acceptance_at = 0.0
        self._bank_names: dict[str, str] = {}
        self._bank_names_at: float | None = None

    def __repr__(self) -> str:  # never show the keys
        return f"WompiGateway(base_url={self._base_url!r})"

    # --- HTTP -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, key: str | None, failure: str,
              payload: Mapping[str, Any] | None = None,
              query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One request; returns the decoded JSON object or raises GatewayError/GatewayTimeout."""
        url = self._base_url + path + (f"?{urlencode(query)}" if query else "")
        # Only a late creation leaves a payment in doubt; other late answers are plain failures.
        late = MSG_TIMEOUT if failure == MSG_CREATE else failure
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self._json.call(method, url, path, failure=failure, late=late, headers=headers,
                               payload=payload)

    # --- acceptance tokens and banks --------------------------------------------------------

    def documents(self) -> list[ConsentDocument]:
        """The end-user terms and the personal-data authorization, each with its acceptance token
        as the version; cached a few minutes, well inside the token's hour of life."""
        with self._lock:
            cached = self._documents
            if cached and self._monotonic() - self._acceptance_at < self._acceptance_ttl:
                return list(cached)
        answer = self._call("GET", f"/merchants/{quote(self._public_key, safe='')}", key=None,
                            failure=MSG_DOCUMENTS)
        data = answer.get("data")
        documents = []
        for doc_id, wompi_field, title in DOCUMENTS:
            presigned = data.get(wompi_field) if isinstance(data, dict) else None
            token = presigned.get("acceptance_token") if isinstance(presigned, dict) else None
            url = presigned.get("permalink") if isinstance(presigned, dict) else None
            if not (isinstance(token, str) and token and isinstance(url, str)
                    and _HTTP_URL.fullmatch(url)):
                log.error("wompi merchant answer without a usable %s", wompi_field)
                raise GatewayError(MSG_DOCUMENTS, code="gateway_malformed")
            documents.append(ConsentDocument(id=doc_id, title=title, url=url, version=token))
        with self._lock:
            self._documents = documents
            self._acceptance_at = self._monotonic()
        return list(documents)

    def list_banks(self) -> list[Bank]:
        answer = self._call("GET", "/pse/financial_institutions", key=self._public_key,
                            failure=MSG_BANKS)
        rows = answer.get("data")
        if not isinstance(rows, list):
            log.error("wompi bank list: 'data' is not a list")
            raise GatewayError(MSG_BANKS, code="gateway_malformed")
        banks: list[Bank] = []
        for row in rows:
            code = row.get("financial_institution_code") if isinstance(row, dict) else None
            name = row.get("financial_institution_name") if isinstance(row, dict) else None
            if code is None or not isinstance(name, str):
                log.error("wompi bank list: malformed row %r", row)
                raise GatewayError(MSG_BANKS, code="gateway_malformed")
            code = str(code).strip()
            if code and code != FILLER_BANK_CODE:
                banks.append(Bank(code=code, name=name.strip()))
        with self._lock:
            self._bank_names = {bank.code: bank.name for bank in banks}
            self._bank_names_at = self._monotonic()
        return banks

    def _bank_name(self, code: str | None) -> str | None:
        if not code:
            return None
        with self._lock:
            name = self._bank_names.get(code)
            fresh = (self._bank_names_at is not None
                     and self._monotonic() - self._bank_names_at < self._bank_names_ttl)
        if name or fresh:
            return name
        try:
            self.list_banks()
        except GatewayError:
            # The name is cosmetic: never fail a status query for it; retry in a minute.
            with self._lock:
                self._bank_names_at = self._monotonic() - self._bank_names_ttl + 60
            return None
        with self._lock:
            return self._bank_names.get(code)

    # --- transactions -----------------------------------------------------------------------

    def validate_request(self, request: PaymentRequest) -> None:
        """PSE's payer rules, a real bank, and both documents accepted when the caller asks."""
        check_payer(request)
        if not request.bank_code or request.bank_code == FILLER_BANK_CODE:
            raise InvalidRequest("Seleccione su banco de la lista.", code="invalid_bank")
        if request.accepted_documents is not None:
            accepted = {document.id for document in request.accepted_documents}
            if any(doc_id not in accepted for doc_id, _, _ in DOCUMENTS):
                raise InvalidRequest(MSG_TERMS, code="terms_not_accepted")

    def build_transaction_payload(self, request: PaymentRequest, acceptance_token: str,
                                  personal_auth_token: str) -> dict[str, Any]:
        """The JSON body of ``POST /transactions`` for a PSE payment.

        The payer's IP goes only in ``reference_one`` (Wompi documents no top-level ``ip``, and
        would otherwise record the server's address as the payer's).
        """
        amount_in_cents = int(request.amount) * 100
        references = {
            "reference_one": clean_text(request.ip, MAX_REFERENCE_FIELD),
            "reference_two": (request.product_opening_date.strftime("%Y%m%d")
                              if request.product_opening_date else ""),
            "reference_three": clean_text(request.beneficiary_document
                                          or request.payer_document_number, MAX_REFERENCE_FIELD),
        }
        return {
            "acceptance_token": acceptance_token,
            "accept_personal_auth": personal_auth_token,
            "amount_in_cents": amount_in_cents,
            "currency": CURRENCY,
            "signature": integrity_signature(request.reference, amount_in_cents, CURRENCY,
                                             self._integrity_secret),
            "customer_email": request.payer_email,
            "reference": request.reference,
            "redirect_url": request.return_url,
            "payment_method_type": "PSE",
            "payment_method": {
                "type": "PSE",
                "user_type": 1 if request.person_type == "juridica" else 0,
                "user_legal_id_type": request.payer_document_type.upper(),
                "user_legal_id": request.payer_document_number,
                "financial_institution_code": request.bank_code,
                "payment_description": clean_description(request.description,
                                                         f"Pago {request.reference}"),
                **{key: value for key, value in references.items() if value},
            },
            "customer_data": {
                "full_name": request.payer_name,
                "phone_number": request.payer_phone,
            },
        }

    def create_transaction(self, request: PaymentRequest) -> GatewayTransaction:
        self.validate_request(request)
        accepted = request.accepted_documents
        if accepted is None:
            try:
                accepted = tuple(self.documents())
            except GatewayError as exc:  # nothing was created yet: a plain, safe failure
                code = "gateway_unavailable" if isinstance(exc, GatewayTimeout) else exc.code
                raise GatewayError(MSG_CREATE, code=code) from exc
        tokens = {document.id: document.version for document in accepted}
        payload = self.build_transaction_payload(request, tokens["end_user_policy"],
                                                 tokens["personal_data_auth"])
        try:
            answer = self._call("POST", "/transactions", key=self._private_key, failure=MSG_CREATE,
                                payload=payload)
            transaction = self._parse(answer.get("data"), failure=MSG_CREATE)
        except GatewayError as exc:
            if exc.code in ("gateway_server_error", "gateway_malformed"):
                # Wompi may have created it before failing: unknown, like a timeout, so the
                # payment waits for the poller instead of being failed and paid twice.
                raise GatewayTimeout(MSG_TIMEOUT, code="gateway_outcome_unknown") from exc
            raise
        if transaction.reference != request.reference:
            log.error("wompi answered reference %r for %r", transaction.reference,
                      request.reference)
            raise GatewayError(MSG_CREATE, code="gateway_malformed")
        return self._wait_for_bank_url(transaction)

    def _wait_for_bank_url(self, transaction: GatewayTransaction) -> GatewayTransaction:
        """Poll ``GET /transactions/{id}`` until the bank URL appears (bounded in count and time).

        On a failed poll the created transaction is returned without a bank URL: it exists at
        Wompi, so the caller must keep it (the poller resolves it), not report a failure.
        """
        deadline = self._monotonic() + self._poll_budget
        attempts = 0
        while (transaction.status == "PENDING" and not transaction.bank_url
               and attempts < self._poll_attempts and self._monotonic() < deadline):
            attempts += 1
            self._sleep(self._poll_interval)
            try:
                transaction = self.get_transaction(transaction.gateway_id)
            except GatewayError as exc:
                log.warning("wompi polling for the bank URL of %s stopped: %s",
                            transaction.gateway_id, exc.code)
                break
        if transaction.status == "PENDING" and not transaction.bank_url:
            log.warning("wompi transaction %s has no bank URL after %d polls",
                        transaction.gateway_id, attempts)
        return transaction

    def get_transaction(self, gateway_id: str) -> GatewayTransaction:
        if not gateway_id:
            raise GatewayError(MSG_QUERY, code="not_found")
        answer = self._call("GET", f"/transactions/{quote(gateway_id, safe='')}",
                            key=self._private_key, failure=MSG_QUERY)
        return self._parse(answer.get("data"), failure=MSG_QUERY)

    def find_by_reference(self, reference: str) -> GatewayTransaction | None:
        answer = self._call("GET", "/transactions", key=self._private_key, failure=MSG_QUERY,
                            query={"reference": reference})
        rows = answer.get("data")
        if not isinstance(rows, list):
            log.error("wompi search by reference: 'data' is not a list")
            raise GatewayError(MSG_QUERY, code="gateway_malformed")
        matches = [row for row in rows if isinstance(row, dict) and row.get("reference") == reference]
        if not matches:
            return None
        newest = max(enumerate(matches), key=lambda pair: (str(pair[1].get("created_at") or ""),
                                                           pair[0]))[1]
        return self._parse(newest, failure=MSG_QUERY)

    def parse_transaction(self, data: Any) -> GatewayTransaction:
        """A Wompi transaction object (``data`` of its answers) → the port's transaction."""
        return self._parse(data, failure=MSG_QUERY)

    def _parse(self, data: Any, *, failure: str) -> GatewayTransaction:
        try:
            return self._to_transaction(data)
        except ValueError as exc:
            log.error("wompi transaction is malformed: %s", exc)
            raise GatewayError(failure, code="gateway_malformed") from exc

    def _to_transaction(self, data: Any) -> GatewayTransaction:
        """Raises ValueError with an English reason when the shape is wrong."""
        if not isinstance(data, dict):
            raise ValueError("transaction is not an object")
        gateway_id = data.get("id")
        reference = data.get("reference")
        cents = data.get("amount_in_cents")
        if not isinstance(gateway_id, str) or not _TRANSACTION_ID.fullmatch(gateway_id):
            raise ValueError("transaction.id is missing or not an id")
        if not isinstance(reference, str) or not reference:
            raise ValueError("transaction.reference is missing or not a string")
        if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
            raise ValueError("transaction.amount_in_cents is missing or not a whole number")
        status = map_status(data.get("status"))  # type: ignore[arg-type]
        method = data.get("payment_method")
        extra = method.get("extra") if isinstance(method, dict) else None
        extra = extra if isinstance(extra, dict) else {}
        cus = extra.get("traceability_code") or extra.get("cus")
        bank_url = extra.get("async_payment_url") if status == "PENDING" else None
        if bank_url is not None and not (isinstance(bank_url, str) and _HTTP_URL.fullmatch(bank_url)):
            log.error("wompi transaction %s: async_payment_url is not a plain http(s) URL", gateway_id)
            bank_url = None
        bank_name = extra.get("bank_name")
        if not bank_name and isinstance(method, dict):
            code = method.get("financial_institution_code")
            bank_name = self._bank_name(str(code)) if code is not None else None
        message = data.get("status_message")
        return GatewayTransaction(
            gateway_id=gateway_id,
            reference=reference,
            status=status,
            amount=cents // 100,
            cus=str(cus) if cus else None,
            bank_url=bank_url if isinstance(bank_url, str) and bank_url else None,
            bank_name=bank_name if isinstance(bank_name, str) and bank_name else None,
            status_message=message if isinstance(message, str) and message else None,
            raw=data,
        )

    # --- events -----------------------------------------------------------------------------

    def verify_event(self, headers: Mapping[str, str], body: bytes, *, now: int) -> VerifiedEvent:
        try:
            event = bounded_json.loads(body, max_bytes=MAX_EVENT_BYTES)
        except ValueError as exc:  # UnicodeDecodeError, too large, too deep
            raise InvalidEvent(f"body is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(event, dict):
            raise InvalidEvent("body is not a JSON object")
        event_type = event.get("event")
        if not isinstance(event_type, str) or not event_type:
            raise InvalidEvent("'event' is missing or not a string")
        data = event.get("data")
        if not isinstance(data, dict):
            raise InvalidEvent("'data' is missing or not an object")
        signature = event.get("signature")
        if not isinstance(signature, dict):
            raise InvalidEvent("'signature' is missing or not an object")
        properties = signature.get("properties")
        if (not isinstance(properties, list) or not properties
                or not all(isinstance(p, str) and p for p in properties)):
            raise InvalidEvent("'signature.properties' must be a non-empty list of strings")
        if event_type == EVENT_TYPE:
            uncovered = [path for path in REQUIRED_PROPERTIES if path not in properties]
            if uncovered:
                raise InvalidEvent(f"the signature does not cover {', '.join(uncovered)}")
        timestamp = event.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise InvalidEvent("'timestamp' is missing or not an integer")
        claimed = signature.get("checksum")
        header = _header(headers, "X-Event-Checksum")
        if claimed is None and header is not None:
            claimed = header
        if not isinstance(claimed, str) or not claimed:
            raise InvalidEvent("'signature.checksum' is missing or not a string")
        claimed = claimed.strip().lower()
        if header is not None and not hmac.compare_digest(header.strip().lower().encode(),
                                                          claimed.encode()):
            raise InvalidEvent("X-Event-Checksum header differs from signature.checksum")
        expected = event_checksum(data, properties, timestamp, self._events_secret)
        if not hmac.compare_digest(expected.encode(), claimed.encode()):
            raise InvalidEvent("checksum does not match (wrong events secret or tampered event)")
        environment = event.get("environment")
        if environment != self._environment:
            raise InvalidEvent(f"event environment {str(environment)[:10]!r} is not this "
                               f"stage's {self._environment!r}")
        if now - timestamp > self._max_event_age:
            raise InvalidEvent(f"event is stale: timestamp {timestamp} is {now - timestamp}s old "
                               f"(max {self._max_event_age}s)")
        if timestamp - now > MAX_FUTURE_SKEW_SECONDS:
            raise InvalidEvent(f"event timestamp {timestamp} is {timestamp - now}s in the future")
        if event_type != EVENT_TYPE:
            raise IgnoredEvent(event_type)
        return _signed_event(data, timestamp)


def _signed_event(data: Mapping[str, Any], timestamp: int) -> VerifiedEvent:
    """The signed id, status and amount (read from the very paths the checksum covered) and the
    unsigned reference; InvalidEvent when a signed value is not what Wompi sends."""
    transaction = data["transaction"]  # present: the checksum read the required paths in it
    gateway_id, status, cents = (transaction[path.split(".")[1]] for path in REQUIRED_PROPERTIES)
    if not isinstance(gateway_id, str) or not _TRANSACTION_ID.fullmatch(gateway_id):
        raise InvalidEvent("data.transaction.id is not a transaction id")
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise InvalidEvent("data.transaction.amount_in_cents is not a whole number")
    try:
        mapped = map_status(status)
    except ValueError as exc:
        raise InvalidEvent(f"data.transaction.status: {exc}") from None
    reference = transaction.get("reference")
    return VerifiedEvent(gateway_id=gateway_id, status=mapped, amount=cents // 100, sent_at=timestamp,
                         reference=reference if isinstance(reference, str) else "")


_instances: dict[tuple[Any, ...], WompiGateway] = {}
_instances_lock = threading.Lock()


def from_settings(settings: Settings) -> WompiGateway:
    """The stage's gateway, one per process and configuration.

    Reusing the instance across requests of a warm Lambda keeps the acceptance tokens and the
    bank names cached, and the HTTP connection pool open.
    """
    from chalicelib.adapters.secrets import get_secret

    values = (
        settings.gateway_base_url,
        settings.gateway_public_key,
        settings.wompi_environment,
        get_secret(settings, "GATEWAY_PRIVATE_KEY"),
        get_secret(settings, "GATEWAY_EVENTS_SECRET"),
        get_secret(settings, "GATEWAY_INTEGRITY_SECRET"),
        settings.webhook_max_age_seconds,
    )
    key = tuple(hashlib.sha256(str(v).encode()).hexdigest() for v in values)
    with _instances_lock:
        gateway = _instances.get(key)
        if gateway is None:
            (base_url, public_key, environment, private_key, events_secret, integrity_secret,
             max_age) = values
            gateway = WompiGateway(base_url, public_key, private_key, events_secret,
                                   integrity_secret, environment=environment or None,
                                   max_event_age_seconds=int(max_age))
            _instances[key] = gateway
        return gateway
