"""Measure 2: DynamoDB round trips per action, through ``chalice.test.Client`` on the real routes.

moto in process, the tests' environment (bcrypt cost 4: the cost changes no count), a clock that
stands still (no idle-session "touch" write sneaks in). Every action runs twice, each time in a
fresh moto with fresh tables, and the second run is reported (steady state; a first run that
differed is shown). Trips made while the session is validated (``auth.current_session``) are
counted apart: the figure reads "own trips + session read".

To add an action: write ``def _my_action(w: World) -> Tally`` (set up without recording, then
``with w.recorded() as tally: w.call(...)``) and append an :class:`Action` to ``ACTIONS`` with its
budget and what it needs (routes, modules, a schedule) so it prints "n/a" until those exist.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from bench import env
from bench.report import ERROR, INFO, NA, Row, within
from bench.trips import DynamoRecorder, Tally

NOT_BUILT = "n/a (not built yet)"
PASSWORD = "una clave larga de prueba 2026"


# --- the world an action runs in -------------------------------------------------------------

class UnexpectedResponse(RuntimeError):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, Any]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class World:
    """A fresh moto, the app's test client, the recorder, the still clock, and login helpers."""

    def __init__(self, recorder: DynamoRecorder, clock: env.BenchClock) -> None:
        self.recorder = recorder
        self.clock = clock
        self.client = env.app_client()
        self.gateway = FakeGateway()

    @contextlib.contextmanager
    def recorded(self) -> Iterator[Tally]:
        with self.recorder.tally() as tally:
            yield tally

    def call(self, method: str, path: str, *, body: Any = None, session: Signed | None = None,
             ip: str | None = None, headers: dict[str, str] | None = None,
             expect: int | tuple[int, ...] = 200, browser: bool = True) -> Response:
        """One request; ``browser`` adds the ``Origin`` a browser sends with a JSON body."""
        sent = {"X-Forwarded-For": ip or env.fresh_ip()}
        if body is not None:
            sent["Content-Type"] = "application/json"
            if browser:
                sent["Origin"] = env.ORIGIN
        if session is not None:
            sent["Cookie"] = session.cookie
            if method not in ("GET", "HEAD"):
                sent["X-CSRF-Token"] = session.csrf
        sent.update(headers or {})
        raw = b"" if body is None else json.dumps(body).encode("utf-8")
        got = self.client.http.request(method, path, headers=sent, body=raw)
        response = Response(got.status_code, dict(got.headers), got.body)
        expected = expect if isinstance(expect, tuple) else (expect,)
        if response.status not in expected:
            raise UnexpectedResponse(f"{method} {path} answered {response.status}, expected "
                                     f"{expected}: {response.body[:300]!r}")
        return response

    def identify(self, document: str) -> str:
        return self.call("POST", "/api/v1/session/identify",
                         body={"document_number": document}).json()["login_ticket"]

    def sign_in(self, member) -> Signed:  # type: ignore[no-untyped-def]
        ticket = self.identify(member.document_number)
        got = self.call("POST", "/api/v1/session", body={"login_ticket": ticket, "password": PASSWORD},
                        expect=201)
        from chalicelib.config import get_settings

        name = get_settings().session_cookie_name
        cookies = got.headers.get("set-cookie") or got.headers.get("Set-Cookie") or ""
        for part in (cookies if isinstance(cookies, list) else [cookies]):
            first = part.split(";", 1)[0]
            if first.startswith(f"{name}="):
                return Signed(cookie=first, csrf=got.json()["csrf_token"], member=member)
        raise UnexpectedResponse(f"login set no {name} cookie: {cookies!r}")

    def member(self, *, password: bool = True):  # type: ignore[no-untyped-def]
        return env.make_member(password=PASSWORD if password else None)


@dataclass(frozen=True)
class Signed:
    cookie: str
    csrf: str
    member: Any


# --- a gateway that answers at once (the gateway call is outside the DynamoDB budget) -------------

class FakeGateway:
    """The ``PaymentGateway`` port in memory: PENDING at creation, ``outcome`` afterwards."""

    name = "bench"
    chooses_bank = False  # the member picks the bank in the portal, as with Wompi

    def __init__(self) -> None:
        self.outcome = "APPROVED"
        self._by_id: dict[str, Any] = {}

    def list_banks(self):  # type: ignore[no-untyped-def]
        from chalicelib.adapters.gateways.base import Bank

        return [Bank("1022", "BANCO UNION COLOMBIANO"), Bank("1507", "NEQUI")]

    def documents(self) -> list[Any]:
        return []  # no consent documents: their fetch is a gateway call, outside the budget

    def validate_request(self, request) -> None:  # type: ignore[no-untyped-def]
        from chalicelib.adapters.gateways.base import check_payer

        check_payer(request)

    def create_transaction(self, request):  # type: ignore[no-untyped-def]
        from chalicelib.adapters.gateways.base import GatewayTransaction

        tx = GatewayTransaction(gateway_id=f"bench-{request.reference}", reference=request.reference,
                                status="PENDING", amount=request.amount,
                                bank_url=f"https://banco.example/pse?ref={request.reference}",
                                bank_name="BANCO UNION COLOMBIANO")
        self._by_id[tx.gateway_id] = tx
        return tx

    def _final(self, tx):  # type: ignore[no-untyped-def]
        return replace(tx, status=self.outcome, cus=f"CUS{zlib.crc32(tx.reference.encode()):010d}",
                       bank_url=None)

    def get_transaction(self, gateway_id: str):  # type: ignore[no-untyped-def]
        return self._final(self._by_id[gateway_id])

    def find_by_reference(self, reference: str):  # type: ignore[no-untyped-def]
        for tx in self._by_id.values():
            if tx.reference == reference:
                return self._final(tx)
        return None

    def verify_event(self, headers, body: bytes, *, now: int):  # type: ignore[no-untyped-def]
        from chalicelib.adapters.gateways.base import VerifiedEvent

        data = json.loads(body)["data"]["transaction"]
        tx = self._by_id[data["id"]]
        return VerifiedEvent(gateway_id=tx.gateway_id, status=data["status"], amount=tx.amount,
                             sent_at=now, reference=data["reference"])

    def event_for(self, payment: dict[str, Any], status: str, now: int) -> dict[str, Any]:
        """A Wompi-shaped ``transaction.updated`` body (signature checked by ``verify_event``)."""
        gateway_id = f"bench-{payment['reference']}"
        return {
            "event": "transaction.updated",
            "data": {"transaction": {
                "id": gateway_id, "reference": payment["reference"], "status": status,
                "amount_in_cents": int(payment["amount"]) * 100, "payment_method_type": "PSE",
            }},
            "sent_at": "2026-11-23T15:00:00.000Z",
            "timestamp": now,
            "signature": {"checksum": "0" * 64, "properties": [
                "transaction.id", "transaction.status", "transaction.amount_in_cents"]},
            "environment": "test",
        }


@contextlib.contextmanager
def fake_gateway(gateway: FakeGateway) -> Iterator[None]:
    """Every context's ``gateway`` becomes ``gateway`` for the block."""
    from chalicelib.context import Context

    original = Context.__dict__.get("gateway")
    Context.gateway = property(lambda self: gateway)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        if original is not None:
            Context.gateway = original  # type: ignore[method-assign]


# --- the actions -----------------------------------------------------------------------------

def _identify(w: World) -> Tally:
    with w.recorded() as tally:
        w.identify(env.fresh_document())
    return tally


def _login(password: str | None, *, known: bool) -> Callable[[World], Tally]:
    def action(w: World) -> Tally:
        document = w.member().document_number if known else env.fresh_document()
        ticket = w.identify(document)
        expect = 201 if known and password == PASSWORD else 401
        with w.recorded() as tally:
            w.call("POST", "/api/v1/session", body={"login_ticket": ticket, "password": password},
                   expect=expect)
        return tally
    return action


def _recovery(w: World) -> Tally:
    member = w.member(password=False)  # first access: an active member with an email
    with w.recorded() as tally:
        w.call("POST", "/api/v1/recovery", body={"document_number": member.document_number},
               expect=202)
    return tally


def _me(w: World) -> Tally:
    signed = w.sign_in(w.member())
    with w.recorded() as tally:
        w.call("GET", "/api/v1/me", session=signed)
    return tally


def _home(w: World) -> Tally:
    with w.recorded() as tally:
        w.call("GET", "/")
    return tally


def _obligation(document: str, n: int, when) -> Any:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Obligation

    ob = Obligation(document_number=document, obligation_id=f"CR-{n:04d}", type="CREDITO",
                    product_number=f"0045{n:08d}", description=f"Crédito de libre inversión {n}",
                    due_date="2026-11-30", amount_due=150_000, minimum_amount=50_000,
                    maximum_amount=900_000, cutoff=when)
    ob.save()
    return ob


def _signed_with_obligations(w: World, count: int) -> tuple[Signed, list[Any]]:
    signed = w.sign_in(w.member())
    obligations = [_obligation(signed.member.document_number, n, w.clock.now)
                   for n in range(1, count + 1)]
    return signed, obligations


def _pay(w: World, signed: Signed, obligation: Any) -> dict[str, Any]:
    return w.call(
        "POST", "/api/v1/payments", session=signed, expect=201,
        body={"items": [{"obligation_id": obligation.obligation_id,
                         "amount": int(obligation.amount_due)}],
              "bank_code": "1022", "person_type": "natural"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ).json()["payment"]


def _obligations(w: World) -> Tally:
    signed, _ = _signed_with_obligations(w, 3)
    with w.recorded() as tally:
        w.call("GET", "/api/v1/obligations", session=signed)
    return tally


def _create_payment(w: World) -> Tally:
    signed, (obligation,) = _signed_with_obligations(w, 1)
    if _has_route("GET", "/api/v1/banks"):
        w.call("GET", "/api/v1/banks", session=signed)  # the member saw the banks before paying
    with w.recorded() as tally:
        _pay(w, signed, obligation)
    return tally


def _webhook(w: World) -> Tally:
    signed, (obligation,) = _signed_with_obligations(w, 1)
    payment = _pay(w, signed, obligation)
    event = w.gateway.event_for(payment, "APPROVED", int(w.clock.now.timestamp()))
    with w.recorded() as tally:
        w.call("POST", "/webhooks/pse", body=event, browser=False)
    return tally


POLLER_PAYMENTS = 3


def _poller_name() -> str | None:
    from chalice.app import ScheduledEventConfig

    from app import app

    for source in getattr(app, "event_sources", []):
        if isinstance(source, ScheduledEventConfig) and any(
                word in source.name.lower() for word in ("poll", "reconcil")):
            return source.name
    return None


def _poller(w: World) -> Tally:
    signed, obligations = _signed_with_obligations(w, POLLER_PAYMENTS)
    for obligation in obligations:
        _pay(w, signed, obligation)
    w.clock.advance(minutes=8)  # first query is due 7 minutes after creation
    name = _poller_name()
    assert name is not None
    event = w.client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                              detail={}, resources=[], region="us-east-1")
    with w.recorded() as tally:
        w.client.lambda_.invoke(name, event)
    return tally


def _per_due_payment(tally: Tally) -> tuple[float, str]:
    queries = sum(c.sends for c in tally.calls if c.operation == "Query")
    rest = tally.trips() - queries
    per = rest / POLLER_PAYMENTS
    return per, f"{per:g} per due payment + {queries} index quer{'y' if queries == 1 else 'ies'}"


STAFF_SEARCH_PAYMENTS = 45  # more than two pages of 20


def _staff_payments(w: World) -> str:
    """A member with STAFF_SEARCH_PAYMENTS payments, written directly (setup, not recorded)."""
    from datetime import timedelta

    from chalicelib.adapters.dynamo.models import Payment, PaymentItem, StatusChange

    member = w.member(password=False)
    now = w.clock()
    with Payment.batch_write() as batch:
        for n in range(STAFF_SEARCH_PAYMENTS):
            at = now - timedelta(minutes=n)
            batch.save(Payment(
                payment_id=uuid.uuid4().hex, reference=f"SVBENCH{n:07d}",
                document_number=member.document_number,
                payer_name="Asociado de Prueba", status="APPROVED", amount=10_000,
                items=[PaymentItem(obligation_id="APO-1", type="APORTE", product_number="1",
                                   description="Aportes", amount=10_000)],
                bank_code="1022", person_type="natural", description="bench", ip="10.0.0.1",
                gateway="bench", created_at=at, updated_at=at,
                status_history=[StatusChange(status="APPROVED", at=at)]))
    return member.document_number


def _staff_cookie(w: World) -> str:
    """A signed-in console session (the item a Cognito sign-in leaves), as its cookie."""
    from datetime import timedelta

    from chalicelib.adapters.dynamo.models import StaffSession
    from chalicelib.config import get_settings
    from chalicelib.security.passwords import hash_token

    token, now = uuid.uuid4().hex + uuid.uuid4().hex, w.clock()
    ends = now + timedelta(hours=8)
    StaffSession(session_hash=hash_token(token), username="tesoreria", stage="ACTIVE", groups=["tesoreria"],
                 csrf_token=uuid.uuid4().hex, created_at=now, last_seen_at=now, expires_at=ends,
                 ttl=ends).save()
    return f"{get_settings().staff_cookie_name}={token}"


def _staff_search(console: bool) -> Callable[[World], Tally]:
    """Three pages of a search by document: the console page (following its "Página siguiente"
    link), or the staff JSON API (its ``next_cursor``)."""
    def action(w: World) -> Tally:
        import html
        import re
        from urllib.parse import quote

        document = _staff_payments(w)
        if console:
            headers, path = {"Cookie": _staff_cookie(w)}, f"/backoffice/pagos?document={document}"
        else:
            headers, path = {"X-Api-Key": "local-staff-key"}, f"/staff/v1/payments?document={document}"
        with w.recorded() as tally:
            for page in range(3):
                got = w.call("GET", path, headers=headers)
                if page == 2:
                    break
                if console:
                    link = re.search(r'href="([^"]+)">Página siguiente', got.body.decode())
                    path = html.unescape(link.group(1))
                else:
                    cursor = quote(got.json()["next_cursor"])
                    path = f"/staff/v1/payments?document={document}&cursor={cursor}"
        return tally
    return action


def _per_page(tally: Tally) -> tuple[float, str]:
    queries = sum(c.sends for c in tally.calls if c.operation == "Query")
    per = queries / 3
    other = tally.own - queries
    figure = f"{per:g} index quer{'y' if per == 1 else 'ies'} per page"
    if other:
        figure += f" + {other} other"
    if tally.session:
        figure += f" + {tally.session / 3:g} session read per page"
    return per, figure


@dataclass(frozen=True)
class Action:
    name: str
    perform: Callable[[World], Tally]
    budget: int | None = None  # on the action's own trips; None = reported only
    routes: tuple[tuple[str, str], ...] = ()  # (method, path) that must exist
    modules: tuple[str, ...] = ()  # importable modules that must exist
    needs: Callable[[], bool] | None = None  # any other precondition
    evaluate: Callable[[Tally], tuple[float, str]] | None = None  # default: own trips
    note: str = ""


PAYMENTS = ("chalicelib.services.payments",)
ACTIONS: list[Action] = [
    Action("identify", _identify, 1, routes=(("POST", "/api/v1/session/identify"),)),
    Action("login success", _login(PASSWORD, known=True), 3, routes=(("POST", "/api/v1/session"),)),
    Action("login wrong password", _login("otra clave equivocada", known=True), 3,
           routes=(("POST", "/api/v1/session"),)),
    Action("login unknown member", _login(PASSWORD, known=False), 3,
           routes=(("POST", "/api/v1/session"),)),
    Action("recovery request (member with email)", _recovery, None,
           routes=(("POST", "/api/v1/recovery"),)),
    Action("GET /api/v1/me", _me, None, routes=(("GET", "/api/v1/me"),),
           note="session validation is one read (GetItem on sessions)"),
    Action("GET / (home page, anonymous)", _home, None, routes=(("GET", "/"),)),
    Action("GET /api/v1/obligations", _obligations, 1,
           routes=(("GET", "/api/v1/obligations"),), modules=PAYMENTS),
    Action("create payment (gateway call faked)", _create_payment, 3,
           routes=(("POST", "/api/v1/payments"),), modules=PAYMENTS),
    Action("webhook APPROVED (signature check faked)", _webhook, 2,
           routes=(("POST", "/api/v1/payments"), ("POST", "/webhooks/pse")), modules=PAYMENTS),
    Action("staff console search by document, 3 pages of 20", _staff_search(True), 1,
           routes=(("GET", "/backoffice/pagos"),), evaluate=_per_page,
           note="by_member index, one Query per page; the staff session read apart"),
    Action("staff API search by document, 3 pages of 20", _staff_search(False), 1,
           routes=(("GET", "/staff/v1/payments"),), evaluate=_per_page),
    Action(f"poller, {POLLER_PAYMENTS} due PENDING -> APPROVED", _poller, 2,
           routes=(("POST", "/api/v1/payments"),), modules=PAYMENTS,
           needs=lambda: _poller_name() is not None, evaluate=_per_due_payment),
]


# --- running them ----------------------------------------------------------------------------

def _has_route(method: str, path: str) -> bool:
    from app import app

    return method in app.routes.get(path, {})


def _available(action: Action) -> bool:
    if not all(_has_route(method, path) for method, path in action.routes):
        return False
    for module in action.modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except ModuleNotFoundError:
            return False
    return action.needs() if action.needs else True


def _figure(action: Action, tally: Tally) -> tuple[float, str]:
    if action.evaluate:
        return action.evaluate(tally)
    figure = f"{tally.own}"
    if tally.session:
        figure += f" + {tally.session} session read{'s' if tally.session > 1 else ''}"
    return float(tally.own), figure


def _once(action: Action, recorder: DynamoRecorder) -> Tally:
    with env.aws(), env.bench_clock() as clock:
        world = World(recorder, clock)
        with fake_gateway(world.gateway):
            return action.perform(world)


def run() -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    details: list[str] = []
    failed: list[str] = []
    section = "dynamodb round trips"
    with DynamoRecorder() as recorder:
        for action in ACTIONS:
            label = f"trips: {action.name}"
            budget = "report" if action.budget is None else f"<= {action.budget}"
            if not _available(action):
                rows.append(Row(label, NOT_BUILT, budget, NA, section))
                continue
            try:
                first = _once(action, recorder)
                tally = _once(action, recorder)
            except Exception as exc:
                import traceback

                traceback.print_exc()
                failed.append(f"{action.name}: {exc}")
                rows.append(Row(label, f"error: {type(exc).__name__}", budget, ERROR, section))
                continue
            value, figure = _figure(action, tally)
            if _figure(action, first)[1] != figure:
                figure += f" (first run: {_figure(action, first)[1]})"
            verdict = INFO if action.budget is None else within(value, action.budget)
            rows.append(Row(label, figure, budget, verdict, section))
            details.append(f"{action.name}: {tally.describe() or 'none'}"
                           + (f" - {action.note}" if action.note else ""))
    notes = [
        "round trips: HTTP requests to DynamoDB (moto's before-send hook) per action, through "
        "chalice.test.Client on the real routes, moto in process, bcrypt cost 4, clock held still; "
        "each action run twice in fresh tables, second run shown; budgets apply to the action's own "
        "trips, the session validation read (auth.current_session) is shown apart; gateway calls "
        "and webhook signature checks use an in-memory fake gateway (outside the DynamoDB budget).",
    ]
    notes += [f"trips detail, {d}" for d in details]
    notes += [f"round trips FAILED: {f}" for f in failed]
    return rows, notes
