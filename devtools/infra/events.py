"""Side effects after the commit: the events table's DynamoDB Stream feeds the
``@app.on_dynamodb_record`` function. Chalice's decorator sets the batch size and the starting
position; the merge template adds what it cannot express: this stack's stream, partial batch
answers, halving a failing batch, bounded retries, and a failure queue (its alarm: :mod:`.alarms`;
the role's stream and queue permissions: :mod:`.iam`)."""

from __future__ import annotations

from typing import Any

from devtools.infra.cfn import tags
from devtools.infra.stages import Stage
from devtools.infra.tables import Table

FAILED_EVENTS_QUEUE = "FailedEventsQueue"


def failed_events_queue_name(stage_: Stage) -> str:
    return f"{stage_.resource_prefix}-failed-events"


def events_table(tables_: list[Table]) -> Table:
    """The table the unit of work puts domain events in (the one with a stream)."""
    from chalicelib.adapters.dynamo.models import OutboxEvent

    return next(t for t in tables_ if t.model is OutboxEvent)


def stream_mapping(table: Table) -> dict[str, Any]:
    """The SAM ``DynamoDB`` event's properties, deep-merged into the packaged ones (whose
    ``Stream`` is app.py's placeholder). A record whose retries are spent goes to the failure
    queue; the poller still sends a receipt whose event ended there."""
    from app import EVENTS_MAX_RETRIES

    return {"Stream": {"Fn::GetAtt": [table.logical_id, "StreamArn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": EVENTS_MAX_RETRIES,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "Arn"]}}}}


def failed_events_queue(stage_: Stage) -> dict[str, Any]:
    """What Lambda sends there is where in the stream the failed batch was: kept 14 days (the
    stream keeps its records 24 hours)."""
    return {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": failed_events_queue_name(stage_), "MessageRetentionPeriod": 14 * 24 * 3600,
        "SqsManagedSseEnabled": True, "Tags": tags(stage_, "failed-events")}}
