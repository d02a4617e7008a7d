"""DynamoDB that does not answer (a read timeout after botocore's retries) is "busy", never a 500.

Found by the payday load test: with moto saturated, ``TransactWriteItems`` timed out and the
payment API answered 500, because PynamoDB's ``cause_response_code`` raises AttributeError when
the cause is a timeout. An unanswered write may still have been applied (DynamoDB can apply it
after the client gave up): the member's retry with the same ``Idempotency-Key`` must then get
that payment, not a second one.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamo.repositories import aws_error_code, is_transient
from tests.integration.test_payments_api import PASSWORD, Member, sign_in
from tests.payment_support import get_obligation


def _timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="http://127.0.0.1:5000/")


def test_a_timeout_has_no_error_code_and_is_transient() -> None:
    wrapped = TransactWriteError("Failed to write transaction items", _timeout())
    assert aws_error_code(wrapped) is None
    assert is_transient(wrapped)
    assert not is_transient(TransactWriteError("Failed", ValueError("a bug")))


@pytest.fixture
def ana(client, make_member, make_obligation, gateway) -> Member:  # type: ignore[no-untyped-def]
    make_member(password=PASSWORD)
    make_obligation()
    return sign_in(client, "1020304050")


@pytest.fixture
def unanswered(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The next ``TransactWriteItems`` times out, before or after moto applied it (``applied``)."""
    from botocore.client import BaseClient

    plan: dict[str, Any] = {"times": 1, "applied": False}
    original = BaseClient._make_api_call

    def call(client, operation_name, params):  # type: ignore[no-untyped-def]
        if operation_name == "TransactWriteItems" and plan["times"] > 0:
            plan["times"] -= 1
            if plan["applied"]:
                original(client, operation_name, params)
            raise _timeout()
        return original(client, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return plan


@pytest.mark.parametrize("applied", [False, True], ids=["lost", "applied-unanswered"])
def test_start_payment_with_dynamodb_unanswered_is_a_503_and_the_retry_pays_once(
        ana: Member, unanswered: dict[str, Any], applied: bool) -> None:
    from chalicelib.adapters.dynamo.models import Payment

    unanswered["applied"] = applied
    first = ana.pay()
    assert first.status_code == 503, first.body
    assert first.json_body["error"]["code"] == "service_busy"
    assert "Intente de nuevo" in first.json_body["error"]["message"]
    retry = ana.pay()  # the same Idempotency-Key
    assert retry.status_code == 201, retry.body
    payments = [p for p in Payment.scan() if p.document_number == "1020304050"]
    assert [p.payment_id for p in payments] == [retry.json_body["payment"]["id"]]
    assert get_obligation("CR-0001").pending_payment_id == payments[0].payment_id
