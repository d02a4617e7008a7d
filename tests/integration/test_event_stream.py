"""Side effects after the commit: the events table's DynamoDB Stream, as Lambda delivers it to
``app.py``'s handler (synthetic batches) and as the local runner reads it from moto."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamo.outbox import outbox_item
from chalicelib.context import Context
from chalicelib.domain.events import PaymentApproved, PaymentEvent, PaymentFlagged, PaymentRejected
from chalicelib.services import notifications
from tests.conftest import sent_emails
from tests.payment_support import get_payment

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/sv-local-events/stream/2026-11-23T15:00:00.000"
AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def approved(payment_id: str = "p" * 22, **fields: Any) -> PaymentApproved:
    return PaymentApproved(**{"payment_id": payment_id, "document_number": "1020304050",
                              "reference": "SV-20261123-AAAA", "at": AT, **fields})


def record(image: dict[str, Any] | None, sequence: int, *, name: str = "INSERT") -> dict[str, Any]:
    """One record of a DynamoDB Streams event as Lambda delivers it (stream view NEW_IMAGE)."""
    change: dict[str, Any] = {"ApproximateCreationDateTime": 1795446000.0, "SequenceNumber": str(sequence),
                              "SizeBytes": 320, "StreamViewType": "NEW_IMAGE",
                              "Keys": {"event_id": {"S": f"key-{sequence}"}}}
    if image is not None:
        change["NewImage"] = image
    return {"eventID": uuid.uuid4().hex, "eventName": name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change,
            "eventSourceARN": STREAM_ARN}


def image(event: PaymentEvent) -> dict[str, Any]:
    return dict(outbox_item(event).serialize())


def batch(*events: PaymentEvent, first: int = 100) -> dict[str, Any]:
    return {"Records": [record(image(e), first + i) for i, e in enumerate(events)]}


def invoke(client: Any, lambda_event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.lambda_.invoke("deliver_domain_events", lambda_event).payload
    return answer


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[PaymentEvent]:
    """The events the handlers were given (instead of sending receipts)."""
    seen: list[PaymentEvent] = []

    def recorder(ctx: Context, events: Sequence[PaymentEvent]) -> None:
        seen.extend(events)

    for kind in list(notifications.HANDLERS):
        monkeypatch.setitem(notifications.HANDLERS, kind, recorder)
    return seen


Handler = Callable[[Context, Sequence[PaymentEvent]], None]


def failing_for(payment_id: str, seen: list[PaymentEvent]) -> Handler:
    def handler(ctx: Context, events: Sequence[PaymentEvent]) -> None:
        for event in events:
            if event.payment_id == payment_id:
                raise RuntimeError("SES is down")
            seen.append(event)
    return handler


def test_a_stream_batch_reaches_the_handlers_as_its_domain_events(client, handled) -> None:  # type: ignore[no-untyped-def]
    rejected = PaymentRejected(payment_id="r" * 22, document_number="1020304050",
                               reference="SV-20261123-BBBB", at=AT, status="FAILED")
    flagged = PaymentFlagged(payment_id="f" * 22, document_number="1020304050",
                             reference="SV-20261123-CCCC", at=AT, reason="amount")
    unknown = {**image(approved("u" * 22)), "kind": {"S": "PaymentRefunded"}}
    lambda_event = batch(approved(), rejected, flagged)
    lambda_event["Records"] += [record(unknown, 200), record(None, 201, name="REMOVE")]  # TTL's delete
    assert invoke(client, lambda_event) == {"batchItemFailures": []}
    assert handled == [approved(), rejected]  # flagged: nothing to do; unknown: logged, skipped


def test_a_failing_handler_reports_its_record_and_the_batch_goes_on(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[PaymentEvent] = []
    monkeypatch.setitem(notifications.HANDLERS, PaymentApproved, failing_for("x" * 22, seen))
    answer = invoke(client, batch(approved("a" * 22), approved("x" * 22), approved("b" * 22), first=300))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "301"}]}
    assert [e.payment_id for e in seen] == ["a" * 22, "b" * 22]


def test_an_unreadable_record_is_reported_for_the_failure_destination(client, handled) -> None:  # type: ignore[no-untyped-def]
    broken = {k: v for k, v in image(approved("z" * 22)).items() if k != "payment_id"}
    lambda_event = batch(approved())
    lambda_event["Records"].insert(0, record(broken, 99))
    assert invoke(client, lambda_event) == {"batchItemFailures": [{"itemIdentifier": "99"}]}
    assert handled == [approved()]


def test_duplicate_records_send_the_receipt_once_after_a_failed_first_send(  # type: ignore[no-untyped-def]
        client, ctx, pending, gateway, clock) -> None:
    from chalicelib.services import payments

    ses = boto3.client("ses", region_name="us-east-1")
    ses.delete_identity(Identity="coopejemplo.example")  # SES refuses the sender for a while
    assert payments.apply_gateway_event(ctx, {}, gateway.event(pending.reference, "APPROVED",
                                                               at=clock.now)) == "processed"
    event = approved(pending.id, reference=pending.reference, at=clock.now)
    invoke(client, batch(event))  # reported for a retry or left to the poller: still owed
    assert sent_emails() == [] and get_payment(pending.id).receipt_emailed is False

    ses.verify_domain_identity(Domain="coopejemplo.example")
    assert invoke(client, batch(event, event)) == {"batchItemFailures": []}  # delivered twice
    assert invoke(client, batch(event, first=500)) == {"batchItemFailures": []}  # and once more
    (message,) = sent_emails()
    assert pending.reference in message.subject and "Aprobada" in message.subject
    assert get_payment(pending.id).receipt_emailed is True
    clock.advance(minutes=12)
    payments.reconcile_pending(ctx)  # the poller's safety net has nothing left to send
    assert len(sent_emails()) == 1


# --- the local runner's reader of the stream (moto's DynamoDB Streams) ---------------------------

def commit(*events: PaymentEvent) -> None:
    from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

    with DynamoUnitOfWork() as uow:
        for event in events:
            uow.record(event)
        uow.commit()


def test_the_runner_delivers_committed_events_once_and_failed_ones_again(aws) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import OutboxEvent
    from devtools.run_local import StreamReader

    batches: list[list[str]] = []
    failing = {"x" * 22}

    def handler(lambda_event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = lambda_event["Records"]
        assert {r["eventSourceARN"] for r in records} == {stream_arn}
        assert all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], float) for r in records)
        ids = [r["dynamodb"]["NewImage"]["payment_id"]["S"] for r in records]
        batches.append(ids)
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
                                      for r, i in zip(records, ids, strict=True) if i in failing]}

    table = boto3.client("dynamodb", region_name="us-east-1").describe_table(
        TableName=OutboxEvent.Meta.table_name)["Table"]
    stream_arn = table["LatestStreamArn"]
    reader = StreamReader(OutboxEvent.Meta.table_name, handler, batch_size=10, max_retries=2)
    assert reader.run_once() == 0
    commit(approved("a" * 22), approved("x" * 22, at=AT + timedelta(seconds=1)))
    commit(approved("b" * 22))
    assert reader.run_once() == 1  # "a"; the rest again from "x"
    assert batches == [["a" * 22, "x" * 22, "b" * 22]]
    failing.clear()
    assert reader.run_once() == 2
    assert batches[1:] == [["x" * 22, "b" * 22]]
    assert reader.run_once() == 0 and len(batches) == 2  # nothing new: nothing delivered


def test_the_runner_passes_a_record_after_its_last_retry(aws) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import OutboxEvent
    from devtools.run_local import StreamReader

    calls: list[int] = []

    def handler(lambda_event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(lambda_event["Records"]))
        raise RuntimeError("always")

    reader = StreamReader(OutboxEvent.Meta.table_name, handler, batch_size=10, max_retries=1)
    commit(approved())
    assert [reader.run_once(), reader.run_once(), reader.run_once()] == [0, 1, 0]
    assert calls == [1, 1]  # the first delivery and its one retry
