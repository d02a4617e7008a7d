"""CloudWatch embedded-metric-format lines the alarms of devtools/infra/alarms.py rely on."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.services import payments
from tests.payment_support import get_payment, start


def metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF lines printed since the last call, each one a whole JSON object."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def named(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [m for m in lines if name in m]


def test_emf_shape_matches_the_alarms(ctx, member, make_obligation, gateway, capsys) -> None:  # type: ignore[no-untyped-def]
    from devtools import infra

    make_obligation()
    started = start(ctx)
    gateway.settle(started.reference, "APPROVED", amount=1)
    capsys.readouterr()
    payments.refresh_payment(ctx, started.id)
    (flagged,) = named(metrics(capsys), infra.METRIC_FLAGGED_FOR_REVIEW)
    spec = flagged["_aws"]["CloudWatchMetrics"][0]
    assert spec["Namespace"] == infra.METRICS_NAMESPACE
    assert spec["Dimensions"] == [["Stage"]]  # exactly the alarm's dimension set
    assert spec["Metrics"] == [{"Name": infra.METRIC_FLAGGED_FOR_REVIEW, "Unit": "Count"}]
    assert flagged["Stage"] == "local" and flagged[infra.METRIC_FLAGGED_FOR_REVIEW] == 1
    assert isinstance(flagged["_aws"]["Timestamp"], int)


def test_final_states_and_gateway_latency(ctx, member, make_obligation, gateway, capsys) -> None:  # type: ignore[no-untyped-def]
    make_obligation()
    capsys.readouterr()
    started = start(ctx)
    created = metrics(capsys)
    latency = named(created, "GatewayLatencyMs")
    assert [m["Operation"] for m in latency] == ["create_transaction"]
    assert latency[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Operation"]]
    assert latency[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    assert latency[0]["GatewayLatencyMs"] >= 0
    assert named(created, "PaymentsFinal") == []  # PENDING is not final

    gateway.settle(started.reference, "APPROVED")
    payments.refresh_payment(ctx, started.id)
    lines = metrics(capsys)
    assert [m["Operation"] for m in named(lines, "GatewayLatencyMs")] == ["get_transaction"]
    (final,) = named(lines, "PaymentsFinal")
    assert final["Status"] == "APPROVED" and final["PaymentsFinal"] == 1
    assert final["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Status"]]
    payments.refresh_payment(ctx, started.id)  # nothing new: no second PaymentsFinal
    assert named(metrics(capsys), "PaymentsFinal") == []


def test_horizon_flag_is_counted(ctx, member, make_obligation, gateway, clock, capsys) -> None:  # type: ignore[no-untyped-def]
    make_obligation()
    start(ctx)
    clock.advance(hours=24, minutes=1)
    capsys.readouterr()
    assert payments.reconcile_pending(ctx).flagged == 1
    assert len(named(metrics(capsys), "PaymentsFlaggedForReview")) == 1


def test_refused_webhook_signatures_are_counted(  # type: ignore[no-untyped-def]
        client, member, make_obligation, gateway, ctx, clock, capsys) -> None:
    make_obligation()
    started = start(ctx)
    forged = gateway.event(started.reference, "APPROVED", at=clock.now, tamper=True)
    capsys.readouterr()
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"}, body=forged)
    assert response.status_code == 401
    (failure,) = named(metrics(capsys), "WebhookSignatureFailures")
    assert failure["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]
    good = gateway.event(started.reference, "APPROVED", at=clock.now)
    assert client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"},
                            body=good).status_code == 200
    assert named(metrics(capsys), "WebhookSignatureFailures") == []


def test_a_broken_stdout_never_breaks_a_payment(ctx, member, make_obligation, gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("stdout closed")

    monkeypatch.setattr(logging.getLogger("sucursal.metrics"), "info", boom)  # the metrics' logger
    make_obligation()
    started = start(ctx)
    assert get_payment(started.id).status == "PENDING"
