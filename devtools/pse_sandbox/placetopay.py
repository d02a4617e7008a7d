"""The sandbox's PlacetoPay WebCheckout side: sessions, the checkout page, the notification.

:class:`chalicelib.adapters.gateways.placetopay.PlacetoPayGateway` runs against it unchanged
(``PLACETOPAY_BASE_URL=http://127.0.0.1:8050``). The ``auth`` object and the notification's
signature are computed here independently of the adapter (hashlib, base64), as PlacetoPay
documents them. ``POST /api/session`` creates a session whose ``processUrl`` is the checkout page
(``/placetopay/session/{requestId}``), where the payer picks the bank and the outcome;
``POST /api/session/{requestId}`` answers its state. Each outcome is notified once to the session's
``notificationUrl`` and never retried, as PlacetoPay does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from devtools.pse_sandbox import templates
from devtools.pse_sandbox.responses import html_response as _html
from devtools.pse_sandbox.responses import json_response as _json

if TYPE_CHECKING:
    from devtools.pse_sandbox.server import PseSandbox

log = logging.getLogger("pse_sandbox.placetopay")

# The local stage's PlacetoPay site (.chalice/config.json uses the same): not secrets.
DEFAULT_LOGIN = "placetopay_local"
DEFAULT_SECRET_KEY = "placetopay_local_secret_key"  # noqa: S105  # nosec B105
SEED_TOLERANCE_SECONDS = 300
#: The banks of PlacetoPay's checkout page (its PSE list comes from ACH: real names).
BANKS: tuple[tuple[str, str], ...] = (
    ("1007", "BANCOLOMBIA"),
    ("1051", "DAVIVIENDA"),
    ("1001", "BANCO DE BOGOTA"),
    ("1507", "NEQUI"),
)
#: The control's outcomes (SPEC §3.1, plus a partial approval) → the session state and reason.
STATES = {
    "APPROVED": ("APPROVED", "00", "La petición ha sido aprobada exitosamente"),
    "DECLINED": ("REJECTED", "05", "La entidad financiera rechazó la transacción"),
    "ERROR": ("REJECTED", "XN", "La entidad financiera reportó un error procesando la transacción"),
    "PENDING": ("PENDING", "PT", "La petición se encuentra pendiente"),
    "APPROVED_PARTIAL": ("APPROVED_PARTIAL", "00", "La petición fue aprobada parcialmente"),
}
_COLOMBIA = timezone(timedelta(hours=-5))


@dataclass
class Session:
    request_id: int
    body: dict[str, Any]  # the request as sent, without ``auth``
    created: float
    cus: str
    state: tuple[str, str, str] = ("PENDING", "PT", "La petición se encuentra activa")
    state_at: float = 0.0
    bank: str | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return str(self.body["payment"]["reference"])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone(_COLOMBIA).isoformat(timespec="seconds")


def _status(state: tuple[str, str, str], epoch: float) -> dict[str, Any]:
    return {"status": state[0], "reason": state[1], "message": state[2], "date": _iso(epoch)}


class PlacetoPaySide:
    """PlacetoPay's endpoints of :class:`PseSandbox` (``owner``: its clock, lock, faults, base
    URL and delivery log)."""

    @staticmethod
    def rules() -> list[Rule]:
        """Its routes (endpoints ``p2p_*``: the owner dispatches them here)."""
        return [
            Rule("/api/session", methods=["POST"], endpoint="p2p_create"),
            Rule("/api/session/<int:request_id>", methods=["POST"], endpoint="p2p_query"),
            Rule("/placetopay/session/<int:request_id>", methods=["GET"],
                 endpoint="p2p_checkout"),
            Rule("/placetopay/session/<int:request_id>", methods=["POST"],
                 endpoint="p2p_decision"),
        ]

    def __init__(self, owner: PseSandbox, *, login: str = DEFAULT_LOGIN,
                 secret_key: str = DEFAULT_SECRET_KEY, signature_algorithm: str = "sha1") -> None:
        if signature_algorithm not in ("sha1", "sha256"):
            raise ValueError("signature_algorithm must be sha1 or sha256")
        self.owner = owner
        self.login = login
        self.secret_key = secret_key
        self.signature_algorithm = signature_algorithm
        self.sessions: dict[int, Session] = {}
        self._next_id = 100_000 + secrets.randbelow(800_000)

    # --- auth -----------------------------------------------------------------------------------

    def _auth_error(self, body: Any) -> Response | None:
        """PlacetoPay's 401 with its reason (101 login, 102 tranKey, 103 seed), or None."""
        auth = body.get("auth") if isinstance(body, dict) else None
        if not isinstance(auth, dict) or not all(isinstance(auth.get(k), str)
                                                 for k in ("login", "tranKey", "nonce", "seed")):
            return self._failed(401, 100, "No se ha proporcionado la autenticación")
        if auth["login"] != self.login:
            return self._failed(401, 101, "Autenticación fallida 101")
        try:
            nonce = base64.b64decode(auth["nonce"], validate=True)
            seed = datetime.fromisoformat(auth["seed"])
        except ValueError:
            return self._failed(401, 102, "Autenticación fallida 102")
        digest = hashlib.sha256(nonce + auth["seed"].encode() + self.secret_key.encode()).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), auth["tranKey"]):
            return self._failed(401, 102, "Autenticación fallida 102")
        if seed.tzinfo is None or abs(seed.timestamp() - self.owner.clock()) > SEED_TOLERANCE_SECONDS:
            return self._failed(401, 103, "Autenticación fallida 103")
        return None

    def _failed(self, http_status: int, reason: int | str, message: str) -> Response:
        return _json(http_status, {"status": {"status": "FAILED", "reason": reason,
                                              "message": message,
                                              "date": _iso(self.owner.clock())}})

    # --- API ------------------------------------------------------------------------------------

    def on_p2p_create(self, request: Request) -> Response:
        body = _body(request)
        refused = self._auth_error(body)
        if refused is not None:
            return refused
        mode = self.owner.faults.get("create", "ok")
        if mode == "error":
            return self._failed(500, 500, "Error interno (falla simulada)")
        problem = self._invalid(body) if isinstance(body, dict) else "El cuerpo debe ser un objeto"
        if problem or not isinstance(body, dict):
            return self._failed(400, "XN", problem or "")
        now = self.owner.clock()
        with self.owner.lock:
            self._next_id += 1
            session = Session(request_id=self._next_id,
                              body={k: v for k, v in body.items() if k != "auth"}, created=now,
                              state_at=now, cus=str(1_000_000_000 + secrets.randbelow(9 * 10**9)))
            self.sessions[session.request_id] = session
        log.info("sandbox: PlacetoPay session %s for %s", session.request_id, session.reference)
        if mode == "timeout":
            self.owner.late_answer()
        return _json(200, {"status": _status(("OK", "PC", "La petición se ha procesado "
                                              "correctamente"), now),
                           "requestId": session.request_id,
                           "processUrl": self.checkout_url(session.request_id)})

    def checkout_url(self, request_id: int) -> str:
        return f"{self.owner.base_url}/placetopay/session/{request_id}"

    def _invalid(self, body: dict[str, Any]) -> str | None:
        payment = body.get("payment")
        amount = payment.get("amount") if isinstance(payment, dict) else None
        payer = body.get("payer")
        if not isinstance(payment, dict) or not isinstance(payment.get("reference"), str):
            return "payment.reference es obligatorio"
        if self.by_reference(payment["reference"]) is not None:
            return "La referencia ya fue usada en otra sesión"
        if not isinstance(amount, dict) or amount.get("currency") != "COP":
            return "payment.amount.currency debe ser COP"
        total = amount.get("total")
        if (isinstance(total, bool) or not isinstance(total, (int, float))
                or total * 100 < self.owner.min_amount_in_cents):
            return "payment.amount.total no es válido"
        for name in ("returnUrl", "ipAddress", "userAgent", "expiration"):
            if not isinstance(body.get(name), str) or not body[name]:
                return f"{name} es obligatorio"
        try:
            expiration = datetime.fromisoformat(body["expiration"]).timestamp()
        except ValueError:
            return "expiration no es una fecha ISO 8601"
        if expiration <= self.owner.clock():
            return "expiration debe ser futura"
        if not isinstance(payer, dict) or not all(isinstance(payer.get(k), str) and payer[k]
                                                  for k in ("document", "documentType", "name",
                                                            "email")):
            return "payer debe tener documento, tipo de documento, nombre y correo"
        return None

    def on_p2p_query(self, request: Request, request_id: int) -> Response:
        refused = self._auth_error(_body(request))
        if refused is not None:
            return refused
        with self.owner.lock:
            session = self.sessions.get(request_id)
            if session is None:
                return self._failed(404, 404, "No se encontró la sesión")
            return _json(200, self.information(session))

    def information(self, session: Session) -> dict[str, Any]:
        """``getRequestInformation``'s answer."""
        attempts = []
        if session.bank is not None and session.state[0] != "PENDING":
            total = session.body["payment"]["amount"]["total"]
            attempts.append({
                "status": _status(session.state, session.state_at),
                "internalReference": session.request_id * 10, "paymentMethod": "pse",
                "paymentMethodName": "PSE", "issuerName": session.bank, "franchise": "_PSE_",
                "reference": session.reference, "authorization": session.cus,
                "receipt": session.cus, "refunded": False,
                "amount": {"from": {"currency": "COP", "total": total},
                           "to": {"currency": "COP", "total": total}, "factor": 1},
            })
        return {"requestId": session.request_id, "status": _status(session.state, session.state_at),
                "request": session.body, "payment": attempts or None, "subscription": None}

    # --- outcomes and the notification ----------------------------------------------------------

    def set_outcome(self, session: Session, outcome: str, bank: str | None = None) -> dict[str, Any]:
        """Apply the outcome and return the signed notification (not sent)."""
        now = self.owner.clock()
        with self.owner.lock:
            session.state = STATES[outcome]
            session.state_at = now
            session.bank = bank or session.bank or BANKS[0][1]
            notice = self.notification(session)
            session.notifications.append(notice)
        log.info("sandbox: PlacetoPay session %s -> %s", session.request_id, session.state[0])
        return notice

    def notification(self, session: Session) -> dict[str, Any]:
        status = _status(session.state, session.state_at)
        raw = f"{session.request_id}{status['status']}{status['date']}{self.secret_key}".encode()
        if self.signature_algorithm == "sha256":
            signature = "sha256:" + hashlib.sha256(raw).hexdigest()
        else:
            signature = hashlib.sha1(raw, usedforsecurity=False).hexdigest()  # the legacy form
        return {"status": status, "requestId": session.request_id,
                "reference": session.reference, "signature": signature}

    def notify(self, session: Session, notice: dict[str, Any], times: int) -> list[dict[str, Any]]:
        """POST the notification ``times`` times (once, as PlacetoPay; never retried)."""
        url = session.body.get("notificationUrl")
        return [self.owner.post_event(url if isinstance(url, str) else None, notice, {},
                                      transaction_id=str(session.request_id),
                                      status=notice["status"]["status"],
                                      signature=notice["signature"])
                for _ in range(times)]

    def by_reference(self, reference: str) -> Session | None:
        with self.owner.lock:
            found = [s for s in self.sessions.values() if s.reference == reference]
        return found[-1] if found else None

    # --- the checkout page ------------------------------------------------------------------------

    def on_p2p_checkout(self, request: Request, request_id: int) -> Response:
        with self.owner.lock:
            session = self.sessions.get(request_id)
        if session is None:
            return _html(404, templates.message_page("Sesión no encontrada",
                                                     "La sesión de pago no existe."))
        payment = session.body["payment"]
        if session.state[0] != "PENDING":
            return _html(200, templates.processed_page(
                bank_name="PlacetoPay", reference=session.reference,
                status={"REJECTED": "DECLINED"}.get(session.state[0], session.state[0]),
                return_url=str(session.body["returnUrl"])))
        return _html(200, templates.checkout_page(
            action=f"/placetopay/session/{request_id}", merchant=self.owner.merchant_name,
            merchant_nit=self.owner.merchant_nit, reference=session.reference,
            description=str(payment.get("description", "")),
            amount=int(payment["amount"]["total"]), banks=BANKS))

    def on_p2p_decision(self, request: Request, request_id: int) -> Response:
        with self.owner.lock:
            session = self.sessions.get(request_id)
        if session is None:
            return _html(404, templates.message_page("Sesión no encontrada",
                                                     "La sesión de pago no existe."))
        decision, code = request.form.get("decision", ""), request.form.get("bank", "")
        bank = dict(BANKS).get(code)
        if decision not in ("APPROVED", "DECLINED", "ERROR", "PENDING") or bank is None:
            return _html(400, templates.message_page(
                "Opción no válida", "Seleccione su banco y una de las opciones de la página."))
        if session.state[0] == "PENDING":
            self.notify(session, self.set_outcome(session, decision, bank), 1)
        response = Response(status=303)
        response.headers["Location"] = str(session.body["returnUrl"])
        return response


def _body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return None

