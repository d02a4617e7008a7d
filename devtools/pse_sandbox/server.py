"""A local stand-in for Wompi and the payer's bank, speaking Wompi's HTTP protocol.

The real :class:`chalicelib.adapters.gateways.wompi.WompiGateway` runs against it unchanged
(``GATEWAY_BASE_URL=http://127.0.0.1:8050/v1``). Signatures are computed here independently of the
adapter, with hashlib, so a test against the sandbox checks the adapter against a second
implementation of the same formulas.

Wompi-side endpoints (under ``/v1``): merchants (acceptance tokens), PSE financial institutions,
create / read / search transactions. Bank side: ``/banco/{id}`` (a page with four outcomes).
Controls: ``POST /_sandbox/outcome``, ``POST /_sandbox/faults``, ``GET /_sandbox/health``,
``GET /_sandbox/events``. Binds 127.0.0.1 only: it is a development tool.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from devtools.pse_sandbox import templates
from devtools.pse_sandbox.placetopay import DEFAULT_LOGIN, DEFAULT_SECRET_KEY, PlacetoPaySide
from devtools.pse_sandbox.responses import html_response as _html
from devtools.pse_sandbox.responses import json_response as _json
from devtools.serving import QuietHandler, serve_in_thread

log = logging.getLogger("pse_sandbox")

DEFAULT_PORT = 8050
DEFAULT_EVENTS_URL = "http://127.0.0.1:8000/webhooks/pse"
DEFAULT_PUBLIC_KEY = "pub_test_local"
# The sandbox's published test credentials (the local stage's config uses the same), not secrets.
DEFAULT_PRIVATE_KEY = "prv_test_local"
DEFAULT_EVENTS_SECRET = "test_events_local"  # noqa: S105  # nosec B105
DEFAULT_INTEGRITY_SECRET = "test_integrity_local"  # noqa: S105  # nosec B105

FILLER = ("0", "A continuación seleccione su banco")
#: Wompi's sandbox banks: "1" approves, "2" declines (the bank page offers every outcome anyway,
#: with the bank's own first).
BANKS: tuple[tuple[str, str], ...] = (
    ("1", "Banco que aprueba"),
    ("2", "Banco que rechaza"),
)
BANK_OUTCOMES = {"1": "APPROVED", "2": "DECLINED"}
OUTCOMES = ("APPROVED", "DECLINED", "ERROR", "PENDING")
NOTIFY = ("once", "twice", "none")
LEGAL_ID_TYPES = ("CC", "CE", "NIT", "PP", "TI", "DNI", "RG", "OTHER")
SIGNED_PROPERTIES = ["transaction.id", "transaction.status", "transaction.amount_in_cents"]
STATUS_MESSAGES = {
    "DECLINED": "La transacción fue rechazada por la entidad financiera",
    "ERROR": "La entidad financiera reportó un error procesando la transacción",
}


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fake_jwt(kind: str) -> str:
    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return ".".join([part({"alg": "HS256"}), part({"kind": kind, "jti": secrets.token_hex(8)}),
                     secrets.token_urlsafe(32)])


@dataclass
class _Transaction:
    data: dict[str, Any]  # Wompi's public fields, without payment_method.extra
    cus: str
    ticket_id: str
    created: float
    reads: int = 0
    provisioned: bool = False  # ACH answered: the bank URL and the CUS are known
    events: list[dict[str, Any]] = field(default_factory=list)


class PseSandbox:
    """The WSGI application. ``base_url`` is set by :func:`start_sandbox` once the port is bound."""

    def __init__(self, *, public_key: str = DEFAULT_PUBLIC_KEY,
                 private_key: str = DEFAULT_PRIVATE_KEY,
                 events_secret: str = DEFAULT_EVENTS_SECRET,
                 integrity_secret: str = DEFAULT_INTEGRITY_SECRET,
                 events_url: str | None = DEFAULT_EVENTS_URL,
                 clock: Callable[[], float] = time.time,
                 merchant_name: str = "Cooperativa de Ahorro y Crédito Ejemplo",
                 merchant_nit: str = "900123456",
                 reads_without_url: int = 1,
                 fault_delay_seconds: float = 2.0,
                 event_timeout_seconds: float = 5.0,
                 min_amount_in_cents: int = 150_000,
                 base_url: str = f"http://127.0.0.1:{DEFAULT_PORT}",
                 placetopay_login: str = DEFAULT_LOGIN,
                 placetopay_secret_key: str = DEFAULT_SECRET_KEY,
                 placetopay_signature: str = "sha1") -> None:
        self.public_key = public_key
        self.private_key = private_key
        self.events_secret = events_secret
        self.integrity_secret = integrity_secret
        self.events_url = events_url
        self.clock = clock
        self.merchant_name = merchant_name
        self.merchant_nit = merchant_nit
        self.reads_without_url = reads_without_url
        self.fault_delay_seconds = fault_delay_seconds
        self.event_timeout_seconds = event_timeout_seconds
        self.min_amount_in_cents = min_amount_in_cents
        self.base_url = base_url
        self.merchant_id = 10_000 + secrets.randbelow(90_000)
        self.acceptance_token = _fake_jwt("END_USER_POLICY")
        self.personal_data_token = _fake_jwt("PERSONAL_DATA_AUTH")
        self.faults: dict[str, Any] = {"create": "ok", "delay_seconds": None}
        self.deliveries: list[dict[str, Any]] = []  # every event sent, held back or failed
        self._transactions: dict[str, _Transaction] = {}
        self._by_reference: dict[str, list[str]] = {}
        self.lock = threading.RLock()
        self.placetopay = PlacetoPaySide(self, login=placetopay_login,
                                         secret_key=placetopay_secret_key,
                                         signature_algorithm=placetopay_signature)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._urls = Map([
            Rule("/v1/merchants/<key>", methods=["GET"], endpoint="merchant"),
            Rule("/v1/pse/financial_institutions", methods=["GET"], endpoint="banks"),
            Rule("/v1/transactions", methods=["POST"], endpoint="create"),
            Rule("/v1/transactions", methods=["GET"], endpoint="search"),
            Rule("/v1/transactions/<tid>", methods=["GET"], endpoint="read"),
            Rule("/banco/<tid>", methods=["GET"], endpoint="bank_page"),
            Rule("/banco/<tid>", methods=["POST"], endpoint="bank_decision"),
            Rule("/_sandbox/outcome", methods=["POST"], endpoint="control_outcome"),
            Rule("/_sandbox/faults", methods=["POST"], endpoint="control_faults"),
            Rule("/_sandbox/health", methods=["GET"], endpoint="health"),
            Rule("/_sandbox/events", methods=["GET"], endpoint="events"),
            *PlacetoPaySide.rules(),
        ], strict_slashes=False)

    # --- WSGI plumbing -----------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        adapter = self._urls.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
            side = self.placetopay if endpoint.startswith("p2p_") else self
            response = getattr(side, f"on_{endpoint}")(request, **args)
        except NotFound:
            response = _error(404, "NOT_FOUND_ERROR", "La entidad solicitada no existe")
        except MethodNotAllowed:
            response = _error(405, "METHOD_NOT_ALLOWED", "Método no permitido")
        except HTTPException as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        except Exception:  # a dev tool must answer, not die: show it in the log
            log.exception("sandbox failure on %s %s", request.method, request.path)
            response = _error(500, "INTERNAL_SERVER_ERROR", "Error interno del simulador")
        return response(environ, start_response)

    def _authorized(self, request: Request, *keys: str) -> bool:
        header = request.headers.get("Authorization", "")
        return any(header == f"Bearer {key}" for key in keys)

    # --- Wompi API -----------------------------------------------------------------------------

    def on_merchant(self, request: Request, key: str) -> Response:
        if key != self.public_key:
            return _error(404, "NOT_FOUND_ERROR", "La entidad solicitada no existe")
        return _json(200, {"data": {
            "id": self.merchant_id,
            "name": self.merchant_name,
            "legal_name": self.merchant_name,
            "legal_id": self.merchant_nit,
            "legal_id_type": "NIT",
            "email": "pagos@cooperativa.example",
            "phone_number": "+5760100000000",
            "active": True,
            "logo_url": None,
            "public_key": self.public_key,
            "accepted_currencies": ["COP"],
            "accepted_payment_methods": ["PSE"],
            "presigned_acceptance": {
                "acceptance_token": self.acceptance_token,
                "permalink": f"{self.base_url}/terminos.pdf",
                "type": "END_USER_POLICY",
            },
            "presigned_personal_data_auth": {
                "acceptance_token": self.personal_data_token,
                "permalink": f"{self.base_url}/datos-personales.pdf",
                "type": "PERSONAL_DATA_AUTH",
            },
        }, "meta": {}})

    def on_banks(self, request: Request) -> Response:
        if not self._authorized(request, self.public_key, self.private_key):
            return _error(401, "INVALID_ACCESS_TOKEN", "Se esperaba una llave pública o privada")
        rows = [{"financial_institution_code": code, "financial_institution_name": name}
                for code, name in (FILLER, *BANKS)]
        return _json(200, {"data": rows, "meta": {}})

    def on_create(self, request: Request) -> Response:
        if not self._authorized(request, self.private_key):
            return _error(401, "INVALID_ACCESS_TOKEN", "Se esperaba una llave privada")
        mode = self.faults.get("create", "ok")
        if mode == "error":
            return _error(500, "INTERNAL_SERVER_ERROR", "Error interno (falla simulada)")
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _validation({"body": ["El cuerpo debe ser un objeto JSON"]})
        messages = self._validate_create(body)
        if messages:
            return _validation(messages)
        txn = self._store(body)
        if mode == "timeout":
            self.late_answer()
        return _json(201, {"data": self._public(txn, count_read=False), "meta": {}})

    def late_answer(self) -> None:
        """Created, but the answer comes too late (the ``timeout`` fault): the adapter times out."""
        delay = self.faults.get("delay_seconds") or self.fault_delay_seconds
        time.sleep(float(delay))

    def _validate_create(self, body: dict[str, Any]) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}

        def fail(name: str, message: str) -> None:
            errors.setdefault(name, []).append(message)

        if body.get("acceptance_token") != self.acceptance_token:
            fail("acceptance_token", "El token de aceptación no es válido")
        if body.get("accept_personal_auth") != self.personal_data_token:
            fail("accept_personal_auth", "El token de autorización de datos personales no es válido")
        cents = body.get("amount_in_cents")
        if isinstance(cents, bool) or not isinstance(cents, int):
            fail("amount_in_cents", "Debe ser un número entero")
        elif cents < self.min_amount_in_cents or cents > 10**12 or cents % 100:
            fail("amount_in_cents", "El monto no es válido para PSE")
        if body.get("currency") != "COP":
            fail("currency", "La moneda debe ser COP")
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference.strip():
            fail("reference", "La referencia es obligatoria")
        elif any(ch in reference for ch in '|"'):
            fail("reference", "La referencia contiene caracteres no permitidos")
        else:
            with self.lock:
                if reference in self._by_reference:
                    fail("reference", "La referencia ya fue usada en otra transacción")
        if isinstance(reference, str) and isinstance(cents, int) and not errors.get("amount_in_cents"):
            raw = f"{reference}{cents}{body.get('currency')}{body.get('expiration_time') or ''}"
            expected = hashlib.sha256((raw + self.integrity_secret).encode()).hexdigest()
            if str(body.get("signature", "")).lower() != expected:
                fail("signature", "La firma de integridad no es válida")
        email = body.get("customer_email")
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            fail("customer_email", "El correo electrónico no es válido")
        redirect = body.get("redirect_url")
        if not isinstance(redirect, str) or not redirect.startswith(("http://", "https://")):
            fail("redirect_url", "La URL de redirección no es válida")
        if body.get("payment_method_type") != "PSE":
            fail("payment_method_type", "Solo se acepta PSE en este simulador")
        method = body.get("payment_method")
        if not isinstance(method, dict) or method.get("type") != "PSE":
            fail("payment_method", "Debe ser un medio de pago PSE")
        else:
            if method.get("user_type") not in (0, 1) or isinstance(method.get("user_type"), bool):
                fail("payment_method.user_type", "Debe ser 0 (natural) o 1 (jurídica)")
            if method.get("user_legal_id_type") not in LEGAL_ID_TYPES:
                fail("payment_method.user_legal_id_type", "Tipo de documento no válido")
            legal_id = method.get("user_legal_id")
            if not isinstance(legal_id, str) or not legal_id.strip():
                fail("payment_method.user_legal_id", "El documento es obligatorio")
            code = method.get("financial_institution_code")
            if code == FILLER[0] or code not in {c for c, _ in BANKS}:
                fail("payment_method.financial_institution_code",
                     "Debe seleccionar una entidad financiera válida")
            description = method.get("payment_description")
            if (not isinstance(description, str) or not description.strip()
                    or len(description) > 30 or any(ch in description for ch in '|"')):
                fail("payment_method.payment_description",
                     "Obligatoria, de máximo 30 caracteres, sin | ni \"")
        customer = body.get("customer_data")
        if not isinstance(customer, dict) or not customer.get("full_name"):
            fail("customer_data.full_name", "El nombre del pagador es obligatorio")
        elif not customer.get("phone_number"):
            fail("customer_data.phone_number", "El teléfono del pagador es obligatorio")
        return errors

    def _store(self, body: dict[str, Any]) -> _Transaction:
        now = self.clock()
        method = dict(body["payment_method"])
        with self.lock:
            while True:
                tid = f"{self.merchant_id}-{int(now)}-{10_000 + secrets.randbelow(90_000)}"
                if tid not in self._transactions:
                    break
            data = {
                "id": tid,
                "created_at": _iso(now),
                "finalized_at": None,
                "amount_in_cents": body["amount_in_cents"],
                "reference": body["reference"],
                "customer_email": body["customer_email"],
                "currency": "COP",
                "payment_method_type": "PSE",
                "payment_method": method,
                "status": "PENDING",
                "status_message": None,
                "billing_data": None,
                "shipping_address": None,
                "redirect_url": body["redirect_url"],
                "payment_source_id": None,
                "payment_link_id": None,
                "customer_data": body.get("customer_data"),
                "bill_id": None,
                "taxes": [],
                "tip_in_cents": None,
            }
            txn = _Transaction(data=data, cus=str(1_000_000_000 + secrets.randbelow(9 * 10**9)),
                               ticket_id=str(100_000_000 + secrets.randbelow(9 * 10**8)),
                               created=now)
            self._transactions[tid] = txn
            self._by_reference.setdefault(body["reference"], []).append(tid)
        log.info("sandbox: created %s for reference %s", tid, body["reference"])
        return txn

    def _public(self, txn: _Transaction, *, count_read: bool) -> dict[str, Any]:
        """Wompi's view: ``extra`` (bank URL, CUS) only once "ACH" has answered."""
        with self.lock:
            if count_read:
                txn.reads += 1
                if txn.reads > self.reads_without_url:
                    txn.provisioned = True
            data = json.loads(json.dumps(txn.data))
            if txn.provisioned:
                data["payment_method"]["extra"] = {
                    "ticket_id": txn.ticket_id,
                    "return_code": "SUCCESS",
                    "request_date": _iso(txn.created)[:10],
                    "async_payment_url": f"{self.base_url}/banco/{txn.data['id']}",
                    "traceability_code": txn.cus,
                    "transaction_cycle": "1",
                    "transaction_state": None if txn.data["status"] == "PENDING" else
                    {"APPROVED": "OK", "DECLINED": "NOT_AUTHORIZED"}.get(txn.data["status"],
                                                                        "FAILED"),
                    "external_identifier": txn.cus,
                    "bank_processing_date": _iso(txn.created)[:10],
                }
            return data

    def on_read(self, request: Request, tid: str) -> Response:
        with self.lock:
            txn = self._transactions.get(tid)
        if txn is None:
            return _error(404, "NOT_FOUND_ERROR", "La entidad solicitada no existe")
        return _json(200, {"data": self._public(txn, count_read=True), "meta": {}})

    def on_search(self, request: Request) -> Response:
        if not self._authorized(request, self.private_key):
            return _error(401, "INVALID_ACCESS_TOKEN", "Se esperaba una llave privada")
        reference = request.args.get("reference")
        with self.lock:
            ids = self._by_reference.get(reference, []) if reference else list(self._transactions)
            found = [self._transactions[tid] for tid in ids]
            found.sort(key=lambda t: t.created, reverse=True)
            rows = [self._public(t, count_read=False) for t in found]
        return _json(200, {"data": rows, "meta": {"page": 1, "page_size": len(rows),
                                                   "total_results": len(rows)}})

    # --- outcomes and events ----------------------------------------------------------------------

    def _set_outcome(self, txn: _Transaction, status: str) -> dict[str, Any]:
        """Apply the bank's answer and return the signed ``transaction.updated`` event."""
        now = self.clock()
        with self.lock:
            txn.provisioned = True
            txn.data["status"] = status
            txn.data["status_message"] = STATUS_MESSAGES.get(status)
            txn.data["finalized_at"] = None if status == "PENDING" else _iso(now)
            event = self.build_event(self._public(txn, count_read=False), now)
            txn.events.append(event)
        log.info("sandbox: %s -> %s", txn.data["id"], status)
        return event

    def build_event(self, data: dict[str, Any], now: float) -> dict[str, Any]:
        """Wompi's event envelope, the whole transaction in it (``payment_method.extra`` with the
        bank URL and the CUS too, as Wompi sends them, unsigned); the checksum is computed here,
        independently of the adapter."""
        timestamp = int(now)
        transaction = {key: data.get(key) for key in (
            "id", "created_at", "finalized_at", "amount_in_cents", "reference", "customer_email",
            "currency", "payment_method_type", "payment_method", "redirect_url", "status",
            "status_message", "shipping_address", "payment_link_id", "payment_source_id",
            "customer_data", "bill_id")}
        raw = (f"{transaction['id']}{transaction['status']}{transaction['amount_in_cents']}"
               f"{timestamp}{self.events_secret}")
        return {
            "event": "transaction.updated",
            "data": {"transaction": transaction},
            "environment": "test",
            "signature": {"properties": list(SIGNED_PROPERTIES),
                          "checksum": hashlib.sha256(raw.encode()).hexdigest()},
            "timestamp": timestamp,
            "sent_at": _iso(now),
        }

    def deliver(self, event: dict[str, Any], times: int) -> list[dict[str, Any]]:
        """POST the Wompi event ``times`` times to the events URL; failures are recorded."""
        checksum = event["signature"]["checksum"]
        transaction = event["data"]["transaction"]
        return [self.post_event(self.events_url, event, {"X-Event-Checksum": checksum},
                                transaction_id=transaction["id"], status=transaction["status"],
                                signature=checksum)
                for _ in range(times)]

    def post_event(self, url: str | None, payload: dict[str, Any], headers: dict[str, str], *,
                   transaction_id: str, status: str, signature: str) -> dict[str, Any]:
        """One POST of a notification (either protocol), recorded in ``deliveries``, never
        raised: the app may be down."""
        record: dict[str, Any] = {"checksum": signature, "transaction_id": transaction_id,
                                  "status": status, "url": url, "http_status": None,
                                  "error": None}
        if not url:
            record["error"] = "no events URL configured"
        else:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            sent = {"Content-Type": "application/json", "User-Agent": "pse-sandbox", **headers}
            # The URL is the operator's own configuration (the local app), not input.
            req = urllib.request.Request(url, data=body, method="POST", headers=sent)  # noqa: S310
            try:
                with self._opener.open(req, timeout=self.event_timeout_seconds) as answer:
                    record["http_status"] = answer.status
            except urllib.error.HTTPError as exc:
                record["http_status"] = exc.code
                record["error"] = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:  # app not up, refused, timeout
                record["error"] = f"{type(exc).__name__}: {exc}"
        if record["error"]:
            log.warning("sandbox: event for %s not delivered: %s", transaction_id,
                        record["error"])
        with self.lock:
            self.deliveries.append(record)
        return record

    # --- the bank -----------------------------------------------------------------------------

    def _bank_name(self, code: Any) -> str:
        return dict(BANKS).get(str(code), "Entidad financiera")

    def on_bank_page(self, request: Request, tid: str) -> Response:
        with self.lock:
            txn = self._transactions.get(tid)
        if txn is None:
            return _html(404, templates.message_page(
                "Transacción no encontrada", "La transacción que intenta autorizar no existe."))
        data = txn.data
        bank = self._bank_name(data["payment_method"].get("financial_institution_code"))
        if data["status"] != "PENDING":
            return _html(200, templates.processed_page(
                bank_name=bank, reference=data["reference"], status=data["status"],
                return_url=_return_url(data)))
        return _html(200, templates.bank_page(
            action=f"/banco/{tid}", bank_name=bank,
            first=BANK_OUTCOMES.get(str(data["payment_method"].get("financial_institution_code")),
                                    "APPROVED"), merchant=self.merchant_name,
            merchant_nit=self.merchant_nit, reference=data["reference"],
            description=data["payment_method"].get("payment_description", ""),
            amount=data["amount_in_cents"] // 100, cus=txn.cus,
            created_at=datetime.fromtimestamp(txn.created, tz=UTC)
            .astimezone(_COLOMBIA).strftime("%d/%m/%Y %I:%M %p")))

    def on_bank_decision(self, request: Request, tid: str) -> Response:
        with self.lock:
            txn = self._transactions.get(tid)
        if txn is None:
            return _html(404, templates.message_page(
                "Transacción no encontrada", "La transacción que intenta autorizar no existe."))
        decision = request.form.get("decision", "")
        if decision not in OUTCOMES:
            return _html(400, templates.message_page("Opción no válida",
                                                     "Elija una de las opciones de la página."))
        if txn.data["status"] == "PENDING":
            self.deliver(self._set_outcome(txn, decision), 1)
        response = Response(status=303)
        response.headers["Location"] = _return_url(txn.data)
        return response

    # --- controls ------------------------------------------------------------------------------

    def on_control_outcome(self, request: Request) -> Response:
        """SPEC §3.1's control for either protocol: the payment is found by our reference (or a
        Wompi ``transaction_id``); PlacetoPay sessions also take ``APPROVED_PARTIAL``."""
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _validation({"body": ["El cuerpo debe ser un objeto JSON"]}, status=400)
        status, notify = body.get("status"), body.get("notify", "once")
        reference, tid = body.get("reference"), body.get("transaction_id")
        errors: dict[str, list[str]] = {}
        if status not in (*OUTCOMES, "APPROVED_PARTIAL"):
            errors["status"] = [f"Debe ser uno de {', '.join(OUTCOMES)}"]
        if notify not in NOTIFY:
            errors["notify"] = [f"Debe ser uno de {', '.join(NOTIFY)}"]
        if not (isinstance(reference, str) and reference) and not (isinstance(tid, str) and tid):
            errors["reference"] = ["La referencia es obligatoria"]
        if errors:
            return _validation(errors, status=400)
        times = {"once": 1, "twice": 2, "none": 0}[notify]
        with self.lock:
            if isinstance(tid, str) and tid:
                txn = self._transactions.get(tid)
            else:
                ids = self._by_reference.get(reference, [])
                txn = self._transactions[ids[-1]] if ids else None
        session = self.placetopay.by_reference(reference) if txn is None and reference else None
        if session is not None:
            notice = self.placetopay.set_outcome(session, status)
            deliveries = self.placetopay.notify(session, notice, times)
            event, transaction_id, signature = notice, str(session.request_id), notice["signature"]
        elif txn is None:
            return _error(404, "NOT_FOUND_ERROR", "No hay transacciones con esa referencia")
        elif status not in OUTCOMES:
            return _validation({"status": [f"Debe ser uno de {', '.join(OUTCOMES)}"]}, status=400)
        else:
            event = self._set_outcome(txn, status)
            deliveries = self.deliver(event, times)
            transaction_id, signature = txn.data["id"], event["signature"]["checksum"]
        if times == 0:
            with self.lock:
                self.deliveries.append({"checksum": signature, "transaction_id": transaction_id,
                                        "status": status, "url": self.events_url,
                                        "http_status": None, "error": "held back (notify=none)"})
        return _json(200, {"event": event, "sent": times, "deliveries": deliveries})

    def on_control_faults(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("create") not in ("ok", "timeout", "error"):
            return _validation({"create": ["Debe ser ok, timeout o error"]}, status=400)
        delay = body.get("delay_seconds")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float))
                                  or delay < 0):
            return _validation({"delay_seconds": ["Debe ser un número positivo"]}, status=400)
        with self.lock:
            self.faults = {"create": body["create"], "delay_seconds": delay}
        return _json(200, {"faults": self.faults})

    def on_health(self, request: Request) -> Response:
        with self.lock:
            count, sessions = len(self._transactions), len(self.placetopay.sessions)
        return _json(200, {"status": "ok", "transactions": count, "sessions": sessions,
                           "events_url": self.events_url, "faults": self.faults})

    def on_events(self, request: Request) -> Response:
        with self.lock:
            return _json(200, {"deliveries": list(self.deliveries)})


_COLOMBIA = timezone(timedelta(hours=-5))  # Colombia: UTC-5, no daylight saving


def _return_url(data: dict[str, Any]) -> str:
    url = str(data["redirect_url"])
    return f"{url}{'&' if '?' in url else '?'}id={data['id']}"


def _error(status: int, kind: str, reason: str) -> Response:
    return _json(status, {"error": {"type": kind, "reason": reason}})


def _validation(messages: dict[str, list[str]], status: int = 422) -> Response:
    return _json(status, {"error": {"type": "INPUT_VALIDATION_ERROR", "messages": messages}})


class SandboxHandle:
    """A running sandbox: ``url`` (origin), ``api_url`` (Wompi base URL), ``app``, ``stop()``."""

    def __init__(self, app: PseSandbox, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        self.port = int(server.server_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(*, port: int | None = None, log_requests: bool = False,
                  **options: Any) -> SandboxHandle:
    """Start the sandbox on 127.0.0.1 in a daemon thread; ``port=0`` picks a free port.

    ``options`` are :class:`PseSandbox`'s keyword arguments (keys, secrets, ``events_url``,
    ``clock``, ``reads_without_url``, ``fault_delay_seconds``...). Without ``port``, ``SANDBOX_PORT``
    or 8050; without ``events_url``, ``SANDBOX_EVENTS_URL`` or the local app's webhook.
    """
    if port is None:
        port = int(os.environ.get("SANDBOX_PORT") or DEFAULT_PORT)
    options.setdefault("events_url", os.environ.get("SANDBOX_EVENTS_URL") or DEFAULT_EVENTS_URL)
    app = PseSandbox(**options)
    server, thread = serve_in_thread(
        app, port, name="pse-sandbox", poll_interval=0.05,
        request_handler=WSGIRequestHandler if log_requests else QuietHandler)
    app.base_url = f"http://127.0.0.1:{server.server_port}"  # nobody knows the port before this
    return SandboxHandle(app, server, thread)
