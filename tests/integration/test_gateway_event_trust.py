"""Forged and rebuilt gateway events against the real Wompi adapter, the local PSE sandbox (real
HTTP on loopback) and the app's webhook route on moto: only what the signature covers is believed,
and an approval is confirmed by the gateway's status query before it touches a balance.

The sandbox holds every event back (``notify: none``) and the test posts it, as delivered or as
an attacker rebuilt it, to ``POST /webhooks/pse``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chalicelib.adapters.dynamo.models import GatewayEvent
from chalicelib.adapters.gateways.wompi import event_checksum
from devtools.pse_sandbox.server import DEFAULT_EVENTS_SECRET
from tests.integration.test_payments_wompi_sandbox import outcome as held_event
from tests.integration.test_payments_wompi_sandbox import wompi  # noqa: F401  (the fixture)
from tests.payment_support import get_obligation, get_payment, start

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def sandbox(wompi):  # type: ignore[no-untyped-def]  # noqa: F811
    """The running sandbox; every Context pays through it with the real Wompi adapter."""
    return wompi


@pytest.fixture
def paying(ctx, make_member, make_obligation, sandbox):  # type: ignore[no-untyped-def]
    """Ana's credit (due 150.000) in a PENDING payment created at the sandbox."""
    make_member()
    make_obligation()
    return start(ctx, bank_code="1")


def post(client, event: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.http.post("/webhooks/pse", headers=JSON, body=json.dumps(event).encode())


def resign(event: dict[str, Any]) -> dict[str, Any]:
    """What only the holder of the events secret can do: a fresh valid checksum."""
    event["signature"]["checksum"] = event_checksum(event["data"], event["signature"]["properties"],
                                                    event["timestamp"], DEFAULT_EVENTS_SECRET)
    return event


def balance() -> int:
    return int(get_obligation("CR-0001").amount_due)


def test_the_sandbox_signs_what_the_hardened_webhook_needs(client, sandbox, paying) -> None:  # type: ignore[no-untyped-def]
    event = held_event(sandbox, paying.reference, "APPROVED")
    assert {"transaction.id", "transaction.status", "transaction.amount_in_cents"} <= set(
        event["signature"]["properties"])
    answer = post(client, event)
    assert (answer.status_code, answer.json_body) == (200, {"result": "processed"})
    assert get_payment(paying.id).status == "APPROVED" and balance() == 0


def test_a_rebuilt_body_with_a_matching_checksum_but_another_status_is_refused(  # type: ignore[no-untyped-def]
        client, sandbox, paying) -> None:
    genuine = held_event(sandbox, paying.reference, "DECLINED")
    rebuilt = copy.deepcopy(genuine)
    transaction = rebuilt["data"]["transaction"]
    # The signed concatenation stays id + "DECLINED" + amount: the checksum still matches...
    rebuilt["signature"]["properties"] = ["transaction.id", "transaction.note",
                                          "transaction.amount_in_cents"]
    transaction["note"], transaction["status"] = "DECLINED", "APPROVED"
    assert resign(copy.deepcopy(rebuilt))["signature"]["checksum"] == genuine["signature"]["checksum"]
    # ...but the status is no longer covered by it.
    answer = post(client, rebuilt)
    assert answer.status_code == 401 and answer.json_body["error"]["code"] == "invalid_signature"
    assert get_payment(paying.id).status == "PENDING" and balance() == 150_000
    assert GatewayEvent.count() == 0
    # the genuine event is not a "duplicate" of the refused one
    assert post(client, genuine).json_body == {"result": "processed"}
    assert get_payment(paying.id).status == "REJECTED" and balance() == 150_000


def test_unsigned_fields_do_not_overwrite_the_bank_url(client, sandbox, paying) -> None:  # type: ignore[no-untyped-def]
    bank_url = get_payment(paying.id).bank_url
    assert bank_url and bank_url.startswith(sandbox.url)
    event = held_event(sandbox, paying.reference, "PENDING")
    event["data"]["transaction"]["payment_method"] = {"type": "PSE", "extra": {
        "async_payment_url": "https://banco-parecido.example/pse", "traceability_code": "666",
        "bank_name": "BANCO PARECIDO"}}
    event["data"]["transaction"]["status_message"] = "Vuelva a pagar en el enlace"
    assert post(client, event).status_code == 200  # unsigned fields: the checksum still holds
    payment = get_payment(paying.id)
    assert payment.bank_url == bank_url and payment.cus != "666"
    assert payment.bank_name != "BANCO PARECIDO" and payment.status_message != "Vuelva a pagar en el enlace"


def test_a_crafted_variant_stored_first_does_not_swallow_the_genuine_event(  # type: ignore[no-untyped-def]
        client, sandbox, paying, make_obligation, ctx) -> None:
    """The genuine approval, replayed first with another payment's reference (unsigned): it must
    neither flag that payment nor keep the genuine approval from being applied."""
    make_obligation("AP-0001", type="APORTES", amount_due=60_000, minimum_amount=60_000,
                    maximum_amount=60_000, product_number="004500009999", description="Aportes")
    other = start(ctx, items=[("AP-0001", 60_000)], key="key-2", bank_code="1")
    genuine = held_event(sandbox, paying.reference, "APPROVED")
    variant = copy.deepcopy(genuine)
    variant["data"]["transaction"]["reference"] = other.reference
    post(client, variant)
    post(client, genuine)
    assert get_payment(paying.id).status == "APPROVED" and balance() == 0
    untouched = get_payment(other.id)
    assert (untouched.status, untouched.review_flag) == ("PENDING", None)
    assert get_obligation("AP-0001").amount_due == 60_000
    (stored,) = GatewayEvent.scan()
    assert stored.event_id == f"wompi#{get_payment(paying.id).gateway_id}#APPROVED"


def test_an_approval_the_status_query_does_not_confirm_is_not_applied(  # type: ignore[no-untyped-def]
        client, sandbox, paying, clock) -> None:
    """A correctly signed APPROVED event (a leaked events secret, or a gateway that is not done
    yet) for a transaction the gateway still shows PENDING: deferred to the poller, not applied."""
    pending = held_event(sandbox, paying.reference, "PENDING")
    early = copy.deepcopy(pending)
    early["data"]["transaction"]["status"] = "APPROVED"
    answer = post(client, resign(early))
    assert (answer.status_code, answer.json_body) == (200, {"result": "deferred"})
    assert get_payment(paying.id).status == "PENDING" and balance() == 150_000
    assert GatewayEvent.count() == 0  # not stored: the real approval is still to come
    approved = held_event(sandbox, paying.reference, "APPROVED")
    assert post(client, approved).json_body == {"result": "processed"}
    assert get_payment(paying.id).status == "APPROVED" and balance() == 0
