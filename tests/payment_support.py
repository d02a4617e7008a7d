"""Test doubles and fixtures for the payment engine (registered through ``pytest_plugins``).

:class:`FakeGateway` implements the ``PaymentGateway`` port in memory, with events signed by a
SHA-256 checksum compared in constant time, like the real adapter's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import (
    Bank,
    ConsentDocument,
    GatewayError,
    GatewayTransaction,
    InvalidEvent,
    PaymentRequest,
    VerifiedEvent,
    check_payer,
)

EVENTS_SECRET = "fake-events-secret"
BANKS = [Bank("1022", "BANCO UNION COLOMBIANO"), Bank("1507", "NEQUI"), Bank("1", "BANCO QUE APRUEBA")]


class FakeGateway:
    name = "fake"

    def __init__(self, name: str = "fake", *, chooses_bank: bool = False) -> None:
        self.name = name
        self.chooses_bank = chooses_bank
        self.consent_documents: list[ConsentDocument] = []  # what documents() answers
        self.documents_error: Exception | None = None
        self.validated: list[PaymentRequest] = []  # validate_request's calls
        self.banks: list[Bank] = list(BANKS)
        self.transactions: dict[str, GatewayTransaction] = {}
        self.calls: list[tuple[str, Any]] = []
        self.banks_error: Exception | None = None
        self.create_error: Exception | None = None
        self.create_error_after_recording = False  # a timeout after the gateway created it
        self.query_error: Exception | None = None
        self.on_create: Callable[[PaymentRequest], None] | None = None
        self.verify_error: Exception | None = None  # what verify_event raises instead
        self._count = 0

    # -- the port ----------------------------------------------------------------------------
    def list_banks(self) -> list[Bank]:
        self.calls.append(("list_banks", None))
        if self.banks_error:
            raise self.banks_error
        return [Bank("0", "A continuación seleccione su banco"), *self.banks]

    def documents(self) -> list[ConsentDocument]:
        if self.documents_error:
            raise self.documents_error
        return list(self.consent_documents)

    def validate_request(self, request: PaymentRequest) -> None:
        self.validated.append(request)
        check_payer(request)

    def create_transaction(self, request: PaymentRequest) -> GatewayTransaction:
        self.calls.append(("create_transaction", request))
        if self.on_create:
            self.on_create(request)
        if self.create_error and not self.create_error_after_recording:
            raise self.create_error
        self._count += 1
        transaction = GatewayTransaction(
            gateway_id=f"gw-{self._count}-{request.reference}", reference=request.reference,
            status="PENDING", amount=request.amount, cus=f"{1000000 + self._count}",
            bank_url=f"https://banco.example/pse?ref={request.reference}", bank_name=None)
        self.transactions[transaction.gateway_id] = transaction
        if self.create_error:
            raise self.create_error
        return transaction

    def get_transaction(self, gateway_id: str) -> GatewayTransaction:
        self.calls.append(("get_transaction", gateway_id))
        if self.query_error:
            raise self.query_error
        if gateway_id not in self.transactions:
            raise GatewayError("No existe", code="not_found")
        return self.transactions[gateway_id]

    def find_by_reference(self, reference: str) -> GatewayTransaction | None:
        self.calls.append(("find_by_reference", reference))
        if self.query_error:
            raise self.query_error
        return next((t for t in self.transactions.values() if t.reference == reference), None)

    def verify_event(self, headers: Mapping[str, str], body: bytes, *, now: int) -> VerifiedEvent:
        if self.verify_error is not None:
            raise self.verify_error
        try:
            event = json.loads(body)
            data, timestamp, claimed = event["transaction"], int(event["timestamp"]), str(event["checksum"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidEvent(f"malformed: {exc}") from None
        expected = checksum(data, timestamp)
        if not hmac.compare_digest(expected.encode(), claimed.encode()):
            raise InvalidEvent("bad checksum")
        return VerifiedEvent(gateway_id=data["id"], status=data["status"], amount=data["amount"],
                             sent_at=timestamp, reference=data["reference"])

    # -- test controls --------------------------------------------------------------------------
    def by_reference(self, reference: str) -> GatewayTransaction:
        found = self.find_by_reference(reference)
        assert found is not None, reference
        return found

    def settle(self, reference: str, status: str, **changes: Any) -> GatewayTransaction:
        """The bank's answer: what later status queries return."""
        current = self.by_reference(reference)
        updated = replace(current, status=status, bank_url=None if status != "PENDING" else current.bank_url,
                          **changes)
        self.transactions[current.gateway_id] = updated
        return updated

    def event(self, reference: str, status: str, *, at: datetime, amount: int | None = None,
              tamper: bool = False) -> bytes:
        """A signed notification body for the transaction of ``reference``, which the gateway's
        status query then shows (like a real gateway, a final transaction does not move)."""
        current = self.by_reference(reference)
        if current.status == "PENDING" and status != "PENDING":
            current = self.settle(reference, status, **({} if amount is None else {"amount": amount}))
        data = {"id": current.gateway_id, "reference": reference, "status": status,
                "amount": current.amount if amount is None else amount, "cus": current.cus}
        timestamp = int(at.timestamp())
        signature = checksum(data, timestamp)
        if tamper:
            data["amount"] = int(data["amount"]) + 1000
        return json.dumps({"transaction": data, "timestamp": timestamp,
                           "checksum": signature}).encode()

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


def checksum(data: Mapping[str, Any], timestamp: int) -> str:
    raw = json.dumps(data, sort_keys=True) + str(timestamp) + EVENTS_SECRET
    return hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture
def gateway(ctx, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:  # type: ignore[no-untyped-def]
    """Every Context (the test's and the app's) uses one fake gateway."""
    from chalicelib.adapters.gateways import registry

    fake = FakeGateway()
    monkeypatch.setattr(registry, "gateway_for", lambda _settings, _name=None: fake)
    yield fake


@pytest.fixture
def member(make_member):  # type: ignore[no-untyped-def]
    """Ana (document 1020304050, with an email), who can pay."""
    return make_member()


@pytest.fixture
def pending(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    """A member with one credit (due 150.000, minimum 50.000, payoff 900.000) in a PENDING payment."""
    make_obligation()
    return start(ctx)


@pytest.fixture
def make_obligation(aws):  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Obligation

    def factory(obligation_id: str = "CR-0001", *, document_number: str = "1020304050",
                type: str = "CREDITO", amount_due: int = 150_000, minimum_amount: int = 50_000,
                maximum_amount: int = 900_000, due_date: str = "2026-11-30",
                product_number: str = "004500001234", description: str = "Crédito de libre inversión",
                status: str = "OPEN") -> Obligation:
        obligation = Obligation(
            document_number=document_number, obligation_id=obligation_id, type=type,
            product_number=product_number, description=description, due_date=due_date,
            amount_due=amount_due, minimum_amount=minimum_amount, maximum_amount=maximum_amount,
            cutoff=datetime(2026, 11, 22, 5, 0, tzinfo=UTC), status=status)
        obligation.save()
        return obligation

    return factory


def get_obligation(obligation_id: str, document_number: str = "1020304050"):  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Obligation

    return Obligation.get(document_number, obligation_id, consistent_read=True)


def get_payment(payment_id: str):  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Payment

    return Payment.get(payment_id, consistent_read=True)


class Handler(threading.local):
    active = False  # this thread is running the events' handler (another Lambda, in AWS)


HANDLER = Handler()


@pytest.fixture(autouse=True)
def stream(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The events table's stream, for tests on moto: the events a DynamoDB unit of work commits
    are handled right after its commit, as the stream's handler does in AWS moments later. The
    handler's DynamoDB calls are its own invocation's: :class:`DynamoCalls` does not count them
    among the request's round trips, and its failure never fails the request (the stream would
    retry it, the poller is the safety net)."""
    if "aws" not in request.fixturenames:
        yield
        return
    from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

    commit = DynamoUnitOfWork.commit

    def commit_then_handle(uow: DynamoUnitOfWork) -> None:
        events = list(uow.events)
        commit(uow)
        if not events or HANDLER.active:
            return
        from chalicelib.context import get_context
        from chalicelib.services.payments import handle_payment_events

        HANDLER.active = True
        try:
            handle_payment_events(get_context(), events)
        except Exception:
            logging.getLogger("tests").exception("the events' handler failed")
        finally:
            HANDLER.active = False

    monkeypatch.setattr(DynamoUnitOfWork, "commit", commit_then_handle)
    yield


class DynamoCalls:
    """Counts DynamoDB operations by name (a spy on botocore's single entry point)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.client import BaseClient

        self.operations: list[str] = []
        original = BaseClient._make_api_call
        spy = self

        def counting(client, operation_name, params):  # type: ignore[no-untyped-def]
            if client.meta.service_model.service_name == "dynamodb" and not HANDLER.active:
                spy.operations.append(operation_name)
            return original(client, operation_name, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", counting)

    def reset(self) -> None:
        self.operations.clear()

    def __len__(self) -> int:
        return len(self.operations)


@pytest.fixture
def dynamo_calls(monkeypatch: pytest.MonkeyPatch) -> DynamoCalls:
    return DynamoCalls(monkeypatch)


def start(ctx, *, items: list[tuple[str, int]] | None = None, key: str = "key-1",  # type: ignore[no-untyped-def]
          bank_code: str = "1022", person_type: str = "natural", document_number: str = "1020304050",
          accepted: list[str] | None = None):
    """A payment started by the service; the payer accepts every document the gateway asks for
    unless ``accepted`` says which."""
    from chalicelib.services import payments

    if accepted is None:
        accepted = [document.id for document in ctx.gateway.documents()]
    return payments.start_payment(ctx, document_number=document_number,
                                  items=items if items is not None else [("CR-0001", 150_000)],
                                  bank_code=bank_code, person_type=person_type,
                                  idempotency_key=key, ip="190.25.1.2", accepted_documents=accepted,
                                  user_agent="Mozilla/5.0 (pruebas)")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The API's error envelope: ``status`` with ``{"error": {"code": code, "message": ...}}``."""
    assert response.status_code == status, response.body
    error = response.json_body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error
