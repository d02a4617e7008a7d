"""Every log line about a payment names it (``payment_id``, bound once per use case) and never a
member's full document number."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3

from chalicelib.adapters.gateways.base import GatewayError
from chalicelib.services import payments
from tests.conftest import sent_emails
from tests.payment_support import start

DOCUMENT = "1020304050"
RUN_SUMMARY = "payment_reconcile_run"  # one line per run, about no single payment


def payment_lines(caplog) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The JSON lines of the "sucursal" logger about payments."""
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "sucursal" and r.getMessage().startswith("{")]
    return [line for line in lines if line["event"].startswith("payment_") and line["event"] != RUN_SUMMARY]


def test_webhook_and_reconcile_lines_carry_the_payment_id(ctx, member, make_obligation, gateway,  # type: ignore[no-untyped-def]
                                                          clock, client, caplog):
    caplog.set_level(logging.INFO, logger="sucursal")
    make_obligation("CR-0001")
    make_obligation("CR-0002")
    by_webhook = start(ctx, items=[("CR-0001", 150_000)], key="key-1")
    by_poller = start(ctx, items=[("CR-0002", 150_000)], key="key-2")
    ses = boto3.client("ses", region_name="us-east-1")
    ses.delete_identity(Identity="coopejemplo.example")  # the first receipt email fails

    body = gateway.event(by_webhook.reference, "APPROVED", at=clock.now)
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"}, body=body)
    assert response.json_body == {"result": "processed"}
    ses.verify_domain_identity(Domain="coopejemplo.example")
    gateway.settle(by_poller.reference, "APPROVED")
    clock.advance(minutes=12)
    report = payments.reconcile_pending(ctx)
    assert (report.applied, report.emails_sent) == (1, 1) and len(sent_emails()) == 2

    names = {by_webhook.id: by_webhook.reference, by_poller.id: by_poller.reference}
    lines = payment_lines(caplog)
    assert all(names.get(line.get("payment_id")) == line.get("reference") for line in lines), lines
    seen = {(line["event"], line["payment_id"]) for line in lines}
    assert {("payment_approved", by_webhook.id), ("payment_receipt_failed", by_webhook.id),
            ("payment_receipt_sent", by_webhook.id), ("payment_approved", by_poller.id),
            ("payment_receipt_sent", by_poller.id)} <= seen
    everything = [r.getMessage() for r in caplog.records if r.name.startswith("sucursal")]
    assert all(DOCUMENT not in line for line in everything), [x for x in everything if DOCUMENT in x]


def test_a_failed_gateway_query_in_a_staff_requery_names_the_payment(ctx, pending, gateway, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="sucursal")
    gateway.query_error = GatewayError("caída", code="gateway_unavailable")
    payments.staff_requery(ctx, pending.id, actor="staff@coop.example", ip=None)
    assert [(line["event"], line["payment_id"]) for line in payment_lines(caplog)] == [
        ("payment_query_failed", pending.id)]
