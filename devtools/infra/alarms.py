"""CloudWatch alarms, all to the stack's ``AlarmTopic``: per function, on the API's 5XX rate, per
table on throttling, and on the app's own metrics (whose names are a contract with chalicelib)."""

from __future__ import annotations

from typing import Any

from devtools.infra.api import api_name
from devtools.infra.events import FAILED_EVENTS_QUEUE, failed_events_queue_name
from devtools.infra.functions import Function
from devtools.infra.stages import Stage
from devtools.infra.tables import Table

#: CloudWatch embedded metric format contract with the app (chalicelib emits these in its JSON
#: logs): namespace, metric names, and one dimension ``Stage`` = the Chalice stage name.
METRICS_NAMESPACE = "SucursalVirtual"
METRIC_FLAGGED_FOR_REVIEW = "PaymentsFlaggedForReview"
METRIC_WEBHOOK_SIGNATURE_FAILURES = "WebhookSignatureFailures"

#: Per-function Lambda alarms: metric (AWS/Lambda, Sum over 5 minutes >= 1) and what it means.
LAMBDA_ALARMS = [
    ("Errors", "unhandled errors (a view's exceptions are 500s, not Lambda errors, so any is a bug "
               "or a timeout)."),
    ("Throttles", "throttled invocations (account or reserved concurrency exhausted)."),
]

#: Alarms on the app's own metrics (EMF, dimension Stage), by metric: (name after
#: ``{app}-{stage}-``, threshold of the Sum over 5 minutes, description).
APP_METRIC_ALARMS = {
    METRIC_FLAGGED_FOR_REVIEW: (
        "payments-flagged-for-review", 1,
        "Payments need manual reconciliation: PENDING beyond the horizon, or the gateway reported "
        "another amount or reference. Staff: GET the review list in the staff API."),
    METRIC_WEBHOOK_SIGNATURE_FAILURES: (
        "webhook-signature-failures", 5,
        "Gateway notifications with a bad signature: a wrong events secret (after a rotation?) "
        "or someone probing the webhook."),
}


def _alarm(name: str, description: str, *, metric: tuple[str, str, list[dict[str, Any]]] | None = None,
            metrics: list[dict[str, Any]] | None = None, threshold: float,
            comparison: str = "GreaterThanOrEqualToThreshold", periods: int = 1,
            datapoints: int | None = None) -> dict[str, Any]:
    """One metric's Sum over 5 minutes (``metric``: namespace, name, dimensions), or metric math."""
    properties: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": description,
        "ActionsEnabled": True,
        "AlarmActions": [{"Ref": "AlarmTopic"}],
        "OKActions": [{"Ref": "AlarmTopic"}],
        "ComparisonOperator": comparison,
        "Threshold": threshold,
        "EvaluationPeriods": periods,
        "TreatMissingData": "notBreaching",
    }
    if datapoints is not None:
        properties["DatapointsToAlarm"] = datapoints
    if metric is not None:
        namespace, metric_name, dimensions = metric
        properties.update({"Namespace": namespace, "MetricName": metric_name, "Dimensions": dimensions,
                           "Statistic": "Sum", "Period": 300})
    else:
        properties["Metrics"] = metrics
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _stat(metric_id: str, namespace: str, name: str, dimensions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
        "Period": 300, "Stat": "Sum"}}


def function_alarms(function: Function) -> dict[str, Any]:
    dimensions = [{"Name": "FunctionName", "Value": {"Ref": function.logical_id}}]
    return {f"{function.logical_id}{metric_name}Alarm": _alarm(
                f"{function.function_name}-{metric_name.lower()}", f"Lambda {function.function_name}: {what}",
                metric=("AWS/Lambda", metric_name, dimensions), threshold=1)
            for metric_name, what in LAMBDA_ALARMS}


def api_error_rate_alarm(stage_: Stage) -> dict[str, Any]:
    dimensions = [{"Name": "ApiName", "Value": api_name(stage_)},
                  {"Name": "Stage", "Value": stage_.api_gateway_stage}]
    alarm = _alarm(
        f"{stage_.resource_prefix}-api-5xx-rate",
        "API Gateway: more than 5% of requests answered 5XX (over 5 minutes with at least "
        "20 requests), in 2 of 3 periods.",
        metrics=[
            _stat("errors", "AWS/ApiGateway", "5XXError", dimensions),
            _stat("requests", "AWS/ApiGateway", "Count", dimensions),
            {"Id": "rate", "Label": "5XX rate (%)", "ReturnData": True,
             "Expression": "IF(requests >= 20, 100 * errors / requests, 0)"},
        ],
        comparison="GreaterThanThreshold", threshold=5, periods=3, datapoints=2)
    alarm["DependsOn"] = ["RestAPI"]  # the API whose name the dimension carries
    return alarm


def table_throttle_alarm(table: Table, stage_: Stage) -> dict[str, Any]:
    """ThrottledRequests is published per (TableName, Operation) only; read and write throttle
    events are per table (including its indexes' back-pressure)."""
    dimensions = [{"Name": "TableName", "Value": {"Ref": table.logical_id}}]
    return _alarm(
        f"{table.name(stage_)}-throttled",
        f"DynamoDB {table.name(stage_)}: throttled reads or writes.",
        metrics=[
            _stat("reads", "AWS/DynamoDB", "ReadThrottleEvents", dimensions),
            _stat("writes", "AWS/DynamoDB", "WriteThrottleEvents", dimensions),
            {"Id": "throttled", "Label": "Throttled requests", "ReturnData": True,
             "Expression": "FILL(reads, 0) + FILL(writes, 0)"},
        ],
        threshold=1)


def app_metric_alarms(stage_: Stage) -> dict[str, Any]:
    """The app's own metrics (CloudWatch embedded metric format, dimension Stage)."""
    dimensions = [{"Name": "Stage", "Value": stage_.name}]
    return {f"{metric_name}Alarm": _alarm(
                f"{stage_.resource_prefix}-{name}", description,
                metric=(METRICS_NAMESPACE, metric_name, dimensions), threshold=threshold)
            for metric_name, (name, threshold, description) in APP_METRIC_ALARMS.items()}


def failed_events_alarm(stage_: Stage) -> dict[str, Any]:
    """A batch of domain events spent its retries (the events stream's failure queue)."""
    dimensions = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "QueueName"]}}]
    return _alarm(failed_events_queue_name(stage_),
                  "Domain events whose handler kept failing (receipts not sent from the stream; the "
                  "poller retries them): read the queue's messages and the function's logs.",
                  metric=("AWS/SQS", "ApproximateNumberOfMessagesVisible", dimensions), threshold=1)
