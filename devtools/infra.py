"""Infrastructure for AWS, generated from the code: the CloudFormation merge template and the IAM
policy files (SPEC §5 "Deployment to AWS"); the package itself is built by :mod:`devtools.packaging`.

    python -m devtools.infra merge-template --stage dev > build/merge-dev.json
    python -m devtools.infra policy --stage prod            # print .chalice/policy-prod.json
    python -m devtools.infra policy --stage prod --write    # rewrite the committed file
    python -m devtools.infra package --stage dev            # what `make package STAGE=dev` runs

Everything is derived at run time, so nothing here needs editing when the app grows:

* the DynamoDB tables from :data:`chalicelib.adapters.dynamo.models.ALL_MODELS` (keys, indexes and
  their projections, TTL attribute, streams);
* the Lambda functions, their roles and the REST API from Chalice's own application graph (the
  same code ``chalice package`` runs), so a new ``@app.schedule`` gets its log group, its alarms
  and its least-privilege role policy;
* the events table's stream mapping (``@app.on_dynamodb_record``): this stack's stream, partial
  batch answers, bounded retries and a failure queue, which Chalice's decorator cannot express;
* names and prefixes from ``.chalice/config.json`` (``app_name``, the stage's ``TABLE_PREFIX``,
  ``SSM_PREFIX`` and ``MAIL_SENDER``).

Two IAM documents exist for one set of permissions (see :func:`permissions`):

* ``.chalice/policy-<stage>.json`` (committed, static JSON: ``chalice deploy`` and the input of
  ``chalice package``) can only name resources by pattern;
* the merge template replaces every generated role's ``Policies`` with the same actions on the
  exact ARNs of the resources of the stack (``Fn::GetAtt``/``Fn::Sub``), one log group per role.

Table retention rule: every table is ``DeletionPolicy``/``UpdateReplacePolicy: Retain`` (and has
deletion protection in prod) unless its entity is listed in :data:`DISPOSABLE_ENTITIES`, which holds
only data that can be lost without losing money, members or evidence: sessions (members sign in
again), rate-limit counters (windows restart), recovery requests (members ask again) and the bank
list cache (re-fetched from the gateway). Payments, gateway events, idempotency claims (they keep
a payment reference from ever being reused), obligations, members and the audit trail are kept.
A model added later is retained unless someone decides otherwise here: the safe default.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from devtools import packaging

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / ".chalice" / "config.json"

#: Entities whose tables may be dropped with the stack (see the module docstring).
DISPOSABLE_ENTITIES = frozenset({"sessions", "rate-counters", "recoveries", "bank-list",
                                 "staff-sessions"})

#: CloudWatch embedded metric format contract with the app (chalicelib emits these in its JSON
#: logs): namespace, metric names, and one dimension ``Stage`` = the Chalice stage name.
METRICS_NAMESPACE = "SucursalVirtual"
METRIC_FLAGGED_FOR_REVIEW = "PaymentsFlaggedForReview"
METRIC_WEBHOOK_SIGNATURE_FAILURES = "WebhookSignatureFailures"

#: Key prefixes of the import/export bucket (SPEC §4), each with its own lifecycle.
IMPORTS_PREFIX = "imports/"  # the drop folder: members.csv, obligations.csv from the core system
REPORTS_PREFIX = "reports/"  # import reports (rejected lines and reasons)
EXPORTS_PREFIX = "exports/"  # daily CSVs of approved payments for the core system

#: Values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_VALUES = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                        1827, 2192, 2557, 2922, 3288, 3653]


# --- what the code actually calls (each action is justified here; tests guard the list) ---------

#: DynamoDB actions, all through PynamoDB (chalicelib/adapters/dynamo, services/imports.py).
#: PynamoDB 6 builds its table metadata from the model classes, so it never calls DescribeTable at
#: run time (``Model.exists``/``create_table`` are used only by the local runner and tests).
#: ``TransactWriteItems`` has no IAM action of its own: DynamoDB authorizes each action inside it
#: as the corresponding PutItem/UpdateItem/DeleteItem (ConditionCheckItem only for
#: ``TransactWrite.condition_check``, which the code does not use). No Scan anywhere: due payments,
#: reviews and a member's sessions are found through indexes (SPEC §3).
DYNAMODB_ACTIONS = [
    "dynamodb:BatchGetItem",    # imports compare a batch with what is stored; member+obligations
                                # in one consistent read before a payment (payments_repo)
    "dynamodb:BatchWriteItem",  # imports insert new members/obligations; logout-everywhere deletes
                                # a member's sessions (repositories.Session.batch_write)
    "dynamodb:DeleteItem",      # logout (Session.delete) and transactional deletes; the
                                # obligations import releases its lock (ImportRun)
    "dynamodb:GetItem",         # Model.get: members, sessions, recoveries, payments, claims, banks
    "dynamodb:PutItem",         # Model.save and TransactWrite.save (payments, events, audit...)
    "dynamodb:Query",           # obligations of a member, audit log, and the GSIs: by_member,
                                # by_reference, by_cus, due_poll (poller), review (staff)
    "dynamodb:UpdateItem",      # conditional state transitions, counters, TransactWrite.update
]

#: SES: ``SesMailer.send`` calls ``send_email`` (SES v1, simple message) and, for a message with
#: an attachment (the PDF receipt) or extra headers (List-Unsubscribe on reminders),
#: ``send_raw_email`` with the MIME it builds (issue 6).
SES_ACTIONS = ["ses:SendEmail", "ses:SendRawEmail"]

#: SSM: ``adapters/secrets.get_secret`` calls ``get_parameter(Name=..., WithDecryption=True)``
#: once per secret per container; no GetParameters/GetParametersByPath.
SSM_ACTIONS = ["ssm:GetParameter"]

#: KMS: WithDecryption on a SecureString makes SSM decrypt with the parameter's key on the
#: caller's behalf; only allowed through SSM (kms:ViaService) and for this stage's parameters
#: (the encryption context SSM passes is the parameter's ARN). With the AWS managed key aws/ssm
#: the key policy already allows it; the statement matters with a customer managed key.
KMS_ACTIONS = ["kms:Decrypt"]

#: S3 on the import/export bucket (SPEC §4): the importer lists and reads the drop folder, the
#: importer writes its report and the exporter writes the daily CSV. No DeleteObject: processed
#: files stay (the lifecycle rules expire them); versioning keeps overwritten ones.
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject"]
S3_BUCKET_ACTIONS = ["s3:ListBucket"]

#: Cognito (the staff console, ``adapters/cognito.py``): the admin API on the staff user pool.
#: Sign-in itself (InitiateAuth, RespondToAuthChallenge, AssociateSoftwareToken,
#: VerifySoftwareToken, SetUserMFAPreference) is the app client's public API: no IAM action.
COGNITO_ACTIONS = [
    "cognito-idp:AdminListGroupsForUser",   # the roles of a staff user at sign-in
    "cognito-idp:ListUsers",                # Personal: the staff users
    "cognito-idp:ListUsersInGroup",         # Personal: who has which role
    "cognito-idp:AdminCreateUser",          # Personal: a new staff user (temporary password)
    "cognito-idp:AdminAddUserToGroup",      # Personal: set the role
    "cognito-idp:AdminRemoveUserFromGroup", # Personal: leave the other roles
    "cognito-idp:AdminEnableUser",          # Personal: enable again
    "cognito-idp:AdminDisableUser",         # Personal: disable
    "cognito-idp:AdminUserGlobalSignOut",   # Personal: a disabled user's tokens end too
]

#: CloudWatch Logs: the Lambda runtime writes stdout/stderr (and so the EMF metrics, which is why
#: cloudwatch:PutMetricData is not needed) to /aws/lambda/<function>. CreateLogGroup only matters
#: under ``chalice deploy``; the packaged template creates each log group itself.
LOGS_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


# --- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    app_name: str
    api_gateway_stage: str
    table_prefix: str
    ssm_prefix: str
    mail_sender: str
    env: dict[str, str]

    @property
    def resource_prefix(self) -> str:
        """``{app_name}-{stage}``: Chalice's prefix for function names, reused for the rest."""
        return f"{self.app_name}-{self.name}"

    @property
    def sender_domain(self) -> str:
        address = parseaddr(self.mail_sender)[1]
        if "@" not in address:
            raise SystemExit(f"MAIL_SENDER {self.mail_sender!r} has no email address")
        return address.rsplit("@", 1)[1].lower()

    @property
    def default_bucket_name(self) -> str:
        """``Fn::Sub`` pattern of the bucket name when the ImportBucketName parameter is empty."""
        return f"{self.resource_prefix}-files-${{AWS::AccountId}}-${{AWS::Region}}"

    @property
    def bucket_pattern(self) -> str:
        """The default bucket name with account and region left open (for the static policy)."""
        return f"{self.resource_prefix}-files-*"

    @property
    def is_production(self) -> bool:
        return self.name == "prod"


def load_config() -> dict[str, Any]:
    return json.loads(CONFIG_PATH.read_text("utf-8"))


def stage(name: str, config: dict[str, Any] | None = None) -> Stage:
    config = config or load_config()
    stages = config.get("stages", {})
    if name not in stages:
        raise SystemExit(f"unknown stage {name!r}; .chalice/config.json has {sorted(stages)}")
    stage_config = stages[name]
    env = {**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}
    missing = [key for key in ("TABLE_PREFIX", "SSM_PREFIX", "MAIL_SENDER") if not env.get(key)]
    if missing:
        raise SystemExit(f"stage {name!r} has no {', '.join(missing)} in .chalice/config.json")
    if not env["SSM_PREFIX"].startswith("/") or not env["SSM_PREFIX"].endswith("/"):
        raise SystemExit(f"SSM_PREFIX must start and end with '/', got {env['SSM_PREFIX']!r}")
    return Stage(
        name=name,
        app_name=config["app_name"],
        api_gateway_stage=stage_config.get("api_gateway_stage", config.get("api_gateway_stage", "api")),
        table_prefix=env["TABLE_PREFIX"],
        ssm_prefix=env["SSM_PREFIX"],
        mail_sender=env["MAIL_SENDER"],
        env=env,
    )


def deployable_stages(config: dict[str, Any] | None = None) -> list[str]:
    """Stages that deploy to AWS: every stage that reads its secrets from SSM."""
    config = config or load_config()
    return [name for name, body in config.get("stages", {}).items()
            if body.get("environment_variables", {}).get("SSM_PREFIX")]


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-") if part)


# --- tables, from the PynamoDB models ----------------------------------------------------------

@dataclass(frozen=True)
class Table:
    entity: str
    logical_id: str
    model: Any

    @property
    def has_indexes(self) -> bool:
        schema = self.model._get_schema()
        return bool(schema["global_secondary_indexes"] or schema["local_secondary_indexes"])

    @property
    def retained(self) -> bool:
        return self.entity not in DISPOSABLE_ENTITIES

    def name(self, stage_: Stage) -> str:
        return f"{stage_.table_prefix}-{self.entity}"


def tables() -> list[Table]:
    """One :class:`Table` per model of ``ALL_MODELS``, in order.

    The models' table names were fixed at import with whatever ``TABLE_PREFIX`` the process had;
    the entity is what follows that prefix, and each stage puts its own prefix in front.
    """
    from chalicelib.adapters.dynamo import models

    prefix = models.table_name("")  # "{TABLE_PREFIX}-"
    found: list[Table] = []
    for model in models.ALL_MODELS:
        full = model.Meta.table_name
        if not full.startswith(prefix) or len(full) == len(prefix):
            raise SystemExit(f"{model.__name__}: table {full!r} is not named {prefix}<entity>")
        entity = full[len(prefix):]
        found.append(Table(entity=entity, logical_id=f"{_camel(entity)}Table", model=model))
    ids = [t.logical_id for t in found]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"two models share a table: {duplicated}")
    return found


def _index(schema: dict[str, Any]) -> dict[str, Any]:
    projection = {"ProjectionType": schema["projection"]["ProjectionType"]}
    if schema["projection"].get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = list(schema["projection"]["NonKeyAttributes"])
    return {
        "IndexName": schema["index_name"],
        "KeySchema": _key_schema(schema["key_schema"]),
        "Projection": projection,
    }


def _key_schema(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    """HASH first, then RANGE: DynamoDB rejects a key schema whose first element is not HASH."""
    return sorted(({"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in keys),
                  key=lambda k: k["KeyType"] != "HASH")


def table_resource(table: Table, stage_: Stage) -> dict[str, Any]:
    model = table.model
    schema = model._get_schema()
    key_schema = _key_schema(schema["key_schema"])
    properties: dict[str, Any] = {
        "TableName": table.name(stage_),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                                 for a in schema["attribute_definitions"]],
        "KeySchema": key_schema,
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = [_index(i)
                                                for i in schema["global_secondary_indexes"]]
    if schema["local_secondary_indexes"]:
        properties["LocalSecondaryIndexes"] = [_index(i)
                                               for i in schema["local_secondary_indexes"]]
    ttl = model._ttl_attribute()
    if ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl.attr_name, "Enabled": True}
    stream_view_type = getattr(model.Meta, "stream_view_type", None)
    if stream_view_type:
        properties["StreamSpecification"] = {"StreamViewType": stream_view_type}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True, "SSEType": "KMS"}
    if table.retained and stage_.is_production:
        properties["DeletionProtectionEnabled"] = True
    properties["Tags"] = _tags(stage_, table.entity)
    policy_ = "Retain" if table.retained else "Delete"
    resource: dict[str, Any] = {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy_,
                                "UpdateReplacePolicy": policy_}
    resource["Properties"] = properties
    return resource


def _tags(stage_: Stage, component: str) -> list[dict[str, str]]:
    return [{"Key": "app", "Value": stage_.app_name}, {"Key": "stage", "Value": stage_.name},
            {"Key": "component", "Value": component}]


# --- functions, from Chalice's application graph ----------------------------------------------

@dataclass(frozen=True)
class Function:
    logical_id: str        # in the packaged template (the API handler is "APIHandler")
    role_logical_id: str | None  # None when config gives a pre-created role (iam_role_arn)
    function_name: str     # Chalice's name: "{app}-{stage}" or "{app}-{stage}-{function}"
    has_chalice_log_group: bool  # log_retention_in_days set in config: Chalice makes the group


@dataclass(frozen=True)
class AppGraph:
    functions: list[Function]
    has_rest_api: bool


def app_graph(stage_name: str) -> AppGraph:
    """The Lambda functions of the app as ``chalice package`` sees them (imports app.py).

    ``os.environ`` is left untouched: Chalice's loader gets a copy to put the stage's variables in.
    """
    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models as chalice_models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.utils import to_cfn_resource_name

    factory = CLIFactory(str(ROOT), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name=stage_name)
    application = ApplicationGraphBuilder().build(config, stage_name)
    resources = DependencyBuilder().build_dependencies(application)
    api_handler = None
    for resource in resources:
        if isinstance(resource, chalice_models.RestAPI):
            api_handler = resource.lambda_function.resource_name
    functions: list[Function] = []
    for resource in resources:
        if not isinstance(resource, chalice_models.LambdaFunction):
            continue
        role = resource.role
        role_id = (to_cfn_resource_name(role.resource_name)
                   if isinstance(role, chalice_models.ManagedIAMRole) else None)
        logical_id = ("APIHandler" if resource.resource_name == api_handler
                      else to_cfn_resource_name(resource.resource_name))
        functions.append(Function(logical_id=logical_id, role_logical_id=role_id,
                                  function_name=resource.function_name,
                                  has_chalice_log_group=resource.log_group is not None))
    return AppGraph(functions=functions, has_rest_api=api_handler is not None)


def _chalice_resources(stage_name: str) -> list[Any]:
    """The resources of the app's deployment graph as ``chalice package`` builds it (imports app.py)."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    factory = CLIFactory(str(ROOT), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name=stage_name)
    return list(DependencyBuilder().build_dependencies(ApplicationGraphBuilder().build(config, stage_name)))


def import_drop_rules(stage_name: str) -> list[tuple[str, str]]:
    """Back office (issue 4): ``(function logical id, event logical id)`` of each ``@app.on_cw_event``
    rule on S3 events (the import drop folder), as ``chalice package`` names them."""
    from chalice.deploy import models as chalice_models
    from chalice.utils import to_cfn_resource_name

    rules = []
    for resource in _chalice_resources(stage_name):
        if isinstance(resource, chalice_models.CloudWatchEvent) and "aws.s3" in json.loads(
                resource.event_pattern).get("source", []):
            rules.append((to_cfn_resource_name(resource.lambda_function.resource_name),
                          to_cfn_resource_name(resource.resource_name)))
    return rules


# --- side effects after the commit: the events table's stream feeds its function -------------

#: Lambda's event source mapping reads the stream with the function's role (the four actions AWS
#: documents for a stream trigger; ListStreams names the stream too).
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams"]
#: ... and sends a batch's description to the failure queue once its retries are spent.
FAILED_EVENTS_ACTIONS = ["sqs:SendMessage"]
FAILED_EVENTS_QUEUE = "FailedEventsQueue"


def stream_sources(stage_name: str) -> list[tuple[str, str]]:
    """``(function logical id, event logical id)`` of each ``@app.on_dynamodb_record`` handler, as
    ``chalice package`` names them."""
    from chalice.deploy import models as chalice_models
    from chalice.utils import to_cfn_resource_name

    return [(to_cfn_resource_name(r.lambda_function.resource_name), to_cfn_resource_name(r.resource_name))
            for r in _chalice_resources(stage_name) if isinstance(r, chalice_models.DynamoDBEventSource)]


def events_table(tables_: list[Table]) -> Table:
    """The table the unit of work puts domain events in (the one with a stream)."""
    from chalicelib.adapters.dynamo.models import OutboxEvent

    return next(t for t in tables_ if t.model is OutboxEvent)


def stream_mapping(table: Table) -> dict[str, Any]:
    """The SAM ``DynamoDB`` event's properties Chalice's decorator cannot express, deep-merged into
    the packaged ones (batch size and starting position stay app.py's): this stack's stream,
    partial batch answers, halving a failing batch, bounded retries, then the failure queue. The
    poller still sends a receipt whose event ended there."""
    from app import EVENTS_MAX_RETRIES

    return {"Stream": {"Fn::GetAtt": [table.logical_id, "StreamArn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": EVENTS_MAX_RETRIES,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "Arn"]}}}}


def failed_events_resources(stage_: Stage) -> dict[str, Any]:
    """The failure queue (what Lambda sends there is where in the stream the batch was: kept 14
    days, the stream's records 24 hours) and its alarm."""
    name = f"{stage_.resource_prefix}-failed-events"
    queue = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": name, "MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True,
        "Tags": _tags(stage_, "failed-events")}}
    alarm = _alarm(name, "Domain events whose handler kept failing (receipts not sent from the stream; "
                         "the poller retries them): read the queue's messages and the function's logs.",
                   metric=("AWS/SQS", "ApproximateNumberOfMessagesVisible", [
                       {"Name": "QueueName", "Value": {"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "QueueName"]}}]),
                   threshold=1)
    return {FAILED_EVENTS_QUEUE: queue, f"{FAILED_EVENTS_QUEUE}Alarm": alarm}


# --- IAM ---------------------------------------------------------------------------------------

def _statement(sid: str, actions: list[str], resources: list[Any],
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
                                 "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def policy(stage_: Stage) -> dict[str, Any]:
    """The committed ``.chalice/policy-<stage>.json``: resources by name pattern only."""
    prefix, lambda_prefix = stage_.table_prefix, f"/aws/lambda/{stage_.resource_prefix}"
    ssm_parameters = f"arn:aws:ssm:*:*:parameter{stage_.ssm_prefix}*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Logs", LOGS_ACTIONS, [
                f"arn:aws:logs:*:*:log-group:{lambda_prefix}",
                f"arn:aws:logs:*:*:log-group:{lambda_prefix}:*",
                f"arn:aws:logs:*:*:log-group:{lambda_prefix}-*",
            ]),
            _statement("Tables", DYNAMODB_ACTIONS, [
                f"arn:aws:dynamodb:*:*:table/{prefix}-*",
                f"arn:aws:dynamodb:*:*:table/{prefix}-*/index/*",
            ]),
            _statement("SendMail", SES_ACTIONS, [f"arn:aws:ses:*:*:identity/{stage_.sender_domain}"]),
            _statement("ReadSecrets", SSM_ACTIONS, [ssm_parameters]),
            _statement("DecryptSecretsThroughSsm", KMS_ACTIONS, ["arn:aws:kms:*:*:key/*"], {
                "StringLike": {"kms:ViaService": "ssm.*.amazonaws.com",
                               "kms:EncryptionContext:PARAMETER_ARN": ssm_parameters},
            }),
            _statement("ImportExportObjects", S3_OBJECT_ACTIONS,
                       [f"arn:aws:s3:::{stage_.bucket_pattern}/*"]),
            _statement("ImportExportBucket", S3_BUCKET_ACTIONS,
                       [f"arn:aws:s3:::{stage_.bucket_pattern}"]),
            # The pool's id is known only once the stack exists: the template names it exactly.
            _statement("StaffDirectory", COGNITO_ACTIONS, ["arn:aws:cognito-idp:*:*:userpool/*"]),
            _statement("ReadEventsStream", STREAM_ACTIONS,
                       [f"arn:aws:dynamodb:*:*:table/{prefix}-events/stream/*"]),
            _statement("FailedEvents", FAILED_EVENTS_ACTIONS,
                       [f"arn:aws:sqs:*:*:{stage_.resource_prefix}-failed-events"]),
        ],
    }


def policy_text(stage_: Stage) -> str:
    return json.dumps(policy(stage_), indent=2) + "\n"


def policy_path(stage_name: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage_name}.json"


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def role_policy(stage_: Stage, tables_: list[Table], functions: list[Function]) -> dict[str, Any]:
    """The same permissions as :func:`policy`, on this stack's exact resources; the log groups are
    those of the functions that use the role (one, unless the config shares a role)."""
    arn = "arn:${AWS::Partition}"
    ssm_parameters = f"{arn}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{stage_.ssm_prefix}*"
    table_arns: list[Any] = []
    for table in tables_:
        table_arns.append({"Fn::GetAtt": [table.logical_id, "Arn"]})
        if table.has_indexes:
            table_arns.append(_sub(f"${{{table.logical_id}.Arn}}/index/*"))
    log_groups = f"{arn}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/"
    logs_actions = [a for a in LOGS_ACTIONS if a != "logs:CreateLogGroup"]
    logs_resources: list[Any] = [_sub(f"{log_groups}{f.function_name}:*") for f in functions]
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Logs", logs_actions, logs_resources),
            _statement("Tables", DYNAMODB_ACTIONS, table_arns),
            _statement("SendMail", SES_ACTIONS, [
                _sub(f"{arn}:ses:${{AWS::Region}}:${{AWS::AccountId}}:identity/{stage_.sender_domain}")]),
            _statement("ReadSecrets", SSM_ACTIONS, [_sub(ssm_parameters)]),
            _statement("DecryptSecretsThroughSsm", KMS_ACTIONS,
                       [_sub(f"{arn}:kms:${{AWS::Region}}:${{AWS::AccountId}}:key/*")], {
                           "StringEquals": {"kms:ViaService": _sub("ssm.${AWS::Region}.amazonaws.com")},
                           "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": _sub(ssm_parameters)},
                       }),
            _statement("ImportExportObjects", S3_OBJECT_ACTIONS, [_sub("${ImportBucket.Arn}/*")]),
            _statement("ImportExportBucket", S3_BUCKET_ACTIONS, [{"Fn::GetAtt": ["ImportBucket", "Arn"]}]),
            _statement("StaffDirectory", COGNITO_ACTIONS, [{"Fn::GetAtt": ["StaffUserPool", "Arn"]}]),
            _statement("ReadEventsStream", STREAM_ACTIONS,
                       [_sub(f"${{{events_table(tables_).logical_id}.Arn}}/stream/*")]),
            _statement("FailedEvents", FAILED_EVENTS_ACTIONS, [{"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "Arn"]}]),
        ],
    }


# --- the merge template ------------------------------------------------------------------------

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


# Answers API Gateway gives without calling the app (an unknown path, throttling, a timeout) carry
# the request id and the security headers too. Static values are single-quoted (API Gateway's
# syntax), so the CSP is "sandbox": a value with quotes of its own cannot be written here.
GATEWAY_RESPONSE_HEADERS = {
    "X-Request-Id": "context.requestId",
    "Content-Security-Policy": "'sandbox'",
    "Strict-Transport-Security": "'max-age=63072000; includeSubDomains'",
    "X-Content-Type-Options": "'nosniff'",
    "X-Frame-Options": "'DENY'",
    "Referrer-Policy": "'no-referrer'",
    "Cache-Control": "'no-store'",
}
# An unknown path is API Gateway's 403 "Missing Authentication Token": answer 404 in Spanish instead,
# in the shape of every other API error (SPEC §6).
NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found",
                                       "message": "La dirección solicitada no existe."}}, ensure_ascii=False)


def gateway_responses() -> dict[str, Any]:
    """The API's gateway responses (OpenAPI extension ``x-amazon-apigateway-gateway-responses``)."""
    parameters = {f"gatewayresponse.header.{name}": value for name, value in GATEWAY_RESPONSE_HEADERS.items()}
    return {
        "DEFAULT_4XX": {"responseParameters": parameters},
        "DEFAULT_5XX": {"responseParameters": parameters},
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": 404, "responseParameters": parameters,
            "responseTemplates": {"application/json": NOT_FOUND_BODY},
        },
    }


def api_name(stage_: Stage) -> str:
    """The REST API's name (and so its ApiName metric dimension), one per stage."""
    return stage_.resource_prefix


#: The staff console's roles (Cognito groups), lowest first.
STAFF_ROLES = ("consulta", "tesoreria", "administrador")


def staff_directory(stage_: Stage) -> dict[str, Any]:
    """The staff user pool: MFA (TOTP) required, 12+ character passwords without composition
    rules (NIST SP 800-63B), accounts made by an administrador only, one group per role, and the
    app client the console signs in with (``USER_PASSWORD_AUTH``, no secret, no user existence
    errors). Kept when the stack is deleted: it holds the staff identities."""
    protection = "ACTIVE" if stage_.is_production else "INACTIVE"
    resources: dict[str, Any] = {
        "StaffUserPool": {
            "Type": "AWS::Cognito::UserPool", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": f"{stage_.resource_prefix}-staff",
                "MfaConfiguration": "ON", "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                "DeletionProtection": protection,
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                "UsernameConfiguration": {"CaseSensitive": False},
                "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "admin_only", "Priority": 1}]},
                "Policies": {"PasswordPolicy": {
                    "MinimumLength": 12, "RequireLowercase": False, "RequireUppercase": False,
                    "RequireNumbers": False, "RequireSymbols": False, "TemporaryPasswordValidityDays": 3}},
                "UserPoolTags": {"app": stage_.app_name, "stage": stage_.name, "component": "staff"},
            },
        },
        "StaffUserPoolClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                "UserPoolId": {"Ref": "StaffUserPool"}, "ClientName": "console", "GenerateSecret": False,
                "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                "PreventUserExistenceErrors": "ENABLED", "EnableTokenRevocation": True,
                "AccessTokenValidity": 60, "IdTokenValidity": 60, "RefreshTokenValidity": 480,
                "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes",
                                       "RefreshToken": "minutes"},
            },
        },
    }
    for rank, role in enumerate(STAFF_ROLES, start=1):
        resources[f"StaffGroup{_camel(role)}"] = {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Properties": {"UserPoolId": {"Ref": "StaffUserPool"}, "GroupName": role, "Precedence": 10 - rank,
                           "Description": f"Sucursal Virtual: rol {role} de la consola del personal"},
        }
    return resources


def merge_template(stage_name: str) -> dict[str, Any]:
    stage_ = stage(stage_name)
    tables_ = tables()
    graph = app_graph(stage_name)
    prefix = stage_.resource_prefix
    resources: dict[str, Any] = {}

    # DynamoDB tables.
    for table in tables_:
        resources[table.logical_id] = table_resource(table, stage_)

    # The import/export bucket (SPEC §4).
    resources["ImportBucket"] = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketName": {"Fn::If": ["HasImportBucketName", {"Ref": "ImportBucketName"},
                                      _sub(stage_.default_bucket_name)]},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            # Object-created events go to EventBridge, where a rule can start the importer
            # (``chalice package`` refuses @app.on_s3_event: SPEC §4).
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            "LifecycleConfiguration": {"Rules": [
                {"Id": "expire-imported-files", "Status": "Enabled", "Prefix": IMPORTS_PREFIX,
                 "ExpirationInDays": {"Ref": "ImportRetentionDays"}},
                {"Id": "expire-import-reports", "Status": "Enabled", "Prefix": REPORTS_PREFIX,
                 "ExpirationInDays": {"Ref": "ImportRetentionDays"}},
                {"Id": "archive-payment-exports", "Status": "Enabled", "Prefix": EXPORTS_PREFIX,
                 "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
                 "ExpirationInDays": {"Ref": "ExportRetentionDays"}},
                {"Id": "old-versions-and-uploads", "Status": "Enabled",
                 "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
            ]},
            "Tags": _tags(stage_, "files"),
        },
    }
    resources["ImportBucketPolicy"] = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "ImportBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [{"Fn::GetAtt": ["ImportBucket", "Arn"]}, _sub("${ImportBucket.Arn}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }]},
        },
    }

    resources.update(staff_directory(stage_))

    # The SES sender identity (the MAIL_SENDER domain): Easy DKIM and a custom MAIL FROM domain,
    # so that SPF and DKIM both align with the From domain for DMARC.
    domain = stage_.sender_domain
    resources["SenderIdentity"] = {
        "Type": "AWS::SES::EmailIdentity",
        "Condition": "CreateSenderIdentity",
        "Properties": {
            "EmailIdentity": domain,
            "DkimSigningAttributes": {"NextSigningKeyLength": "RSA_2048_BIT"},
            "FeedbackAttributes": {"EmailForwardingEnabled": True},
            "MailFromAttributes": {"MailFromDomain": f"bounce.{domain}",
                                   "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
        },
    }

    # Alarms go to one topic; an email subscription when AlarmEmail is given.
    resources["AlarmTopic"] = {"Type": "AWS::SNS::Topic",
                               "Properties": {"DisplayName": f"{prefix} alarms",
                                              "Tags": _tags(stage_, "alarms")}}
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail",
        "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                       "Endpoint": {"Ref": "AlarmEmail"}},
    }

    # Functions: Chalice's names, a log group with retention, the run-time variables and an exact
    # role policy. Patching works because `chalice package --merge-template` deep-merges
    # dictionaries and replaces lists (so `Policies` is replaced whole).
    for function in graph.functions:
        patch: dict[str, Any] = {"Properties": {
            "FunctionName": function.function_name,
            "Environment": {"Variables": {"IMPORT_BUCKET": {"Ref": "ImportBucket"},
                                          "STAFF_USER_POOL_ID": {"Ref": "StaffUserPool"},
                                          "STAFF_CLIENT_ID": {"Ref": "StaffUserPoolClient"}}},
        }}
        if not function.has_chalice_log_group:
            log_id = f"{function.logical_id}LogGroup"
            # Deleted with the stack: the audit trail lives in DynamoDB, not in the logs.
            resources[log_id] = {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Delete",
                                 "UpdateReplacePolicy": "Delete", "Properties": {
                "LogGroupName": f"/aws/lambda/{function.function_name}",
                "RetentionInDays": {"Ref": "LogRetentionDays"},
            }}
            # Created before the function, so no invocation creates it first (no retention).
            patch["DependsOn"] = [log_id]
        resources[function.logical_id] = patch
        fn_dimension = [{"Name": "FunctionName", "Value": {"Ref": function.logical_id}}]
        for metric_name, what in LAMBDA_ALARMS:
            resources[f"{function.logical_id}{metric_name}Alarm"] = _alarm(
                f"{function.function_name}-{metric_name.lower()}", f"Lambda {function.function_name}: {what}",
                metric=("AWS/Lambda", metric_name, fn_dimension), threshold=1)

    # Back office (issue 4): the S3 drop folder's EventBridge rule matches this stack's bucket
    # (app.py cannot name it: it is known only here). Deep-merged into Chalice's event pattern.
    for function_id, event_id in import_drop_rules(stage_name):
        properties = resources.setdefault(function_id, {}).setdefault("Properties", {})
        properties["Events"] = {event_id: {"Properties": {"Pattern": {"detail": {
            "bucket": {"name": [{"Ref": "ImportBucket"}]}}}}}}

    # Side effects after the commit: the events table's stream feeds its function (see stream_mapping).
    for function_id, event_id in stream_sources(stage_name):
        properties = resources.setdefault(function_id, {}).setdefault("Properties", {})
        properties.setdefault("Events", {})[event_id] = {"Properties": stream_mapping(events_table(tables_))}
    resources.update(failed_events_resources(stage_))

    roles: dict[str, list[Function]] = {}
    for function in graph.functions:
        if function.role_logical_id:  # else a pre-created role (iam_role_arn): not ours to patch
            roles.setdefault(function.role_logical_id, []).append(function)
    for role_id, users in roles.items():
        resources[role_id] = {"Properties": {"Policies": [{
            "PolicyName": f"{role_id}Policy", "PolicyDocument": role_policy(stage_, tables_, users),
        }]}}

    # The API: a name per stage so its metrics (dimension ApiName) are this stage's only.
    if graph.has_rest_api:
        # Binary media types "*/*": API Gateway matches only the first type of the browser's
        # Accept header (text/html), so without it the PDF receipt would arrive as base64 text.
        # Text answers are not base64-flagged by Chalice, so they pass through unchanged.
        resources["RestAPI"] = {"Properties": {"Name": api_name(stage_), "DefinitionBody": {
            "info": {"title": api_name(stage_)},
            "x-amazon-apigateway-binary-media-types": ["*/*"],
            "x-amazon-apigateway-gateway-responses": gateway_responses(),
        }}}
        api_dims = [{"Name": "ApiName", "Value": api_name(stage_)},
                    {"Name": "Stage", "Value": stage_.api_gateway_stage}]
        alarm = _alarm(
            f"{prefix}-api-5xx-rate",
            "API Gateway: more than 5% of requests answered 5XX (over 5 minutes with at least "
            "20 requests), in 2 of 3 periods.",
            metrics=[
                _stat("errors", "AWS/ApiGateway", "5XXError", api_dims),
                _stat("requests", "AWS/ApiGateway", "Count", api_dims),
                {"Id": "rate", "Label": "5XX rate (%)", "ReturnData": True,
                 "Expression": "IF(requests >= 20, 100 * errors / requests, 0)"},
            ],
            comparison="GreaterThanThreshold", threshold=5, periods=3, datapoints=2)
        alarm["DependsOn"] = ["RestAPI"]  # the API whose name the dimension carries
        resources["ApiServerErrorRateAlarm"] = alarm

    # DynamoDB throttling per table. ThrottledRequests is published per (TableName, Operation)
    # only; read and write throttle events are per table (including its indexes' back-pressure).
    for table in tables_:
        dims = [{"Name": "TableName", "Value": {"Ref": table.logical_id}}]
        resources[f"{table.logical_id}ThrottlesAlarm"] = _alarm(
            f"{table.name(stage_)}-throttled",
            f"DynamoDB {table.name(stage_)}: throttled reads or writes.",
            metrics=[
                _stat("reads", "AWS/DynamoDB", "ReadThrottleEvents", dims),
                _stat("writes", "AWS/DynamoDB", "WriteThrottleEvents", dims),
                {"Id": "throttled", "Label": "Throttled requests", "ReturnData": True,
                 "Expression": "FILL(reads, 0) + FILL(writes, 0)"},
            ],
            threshold=1)

    # The app's own metrics (CloudWatch embedded metric format, dimension Stage).
    stage_dims = [{"Name": "Stage", "Value": stage_.name}]
    for metric_name, (name, threshold, description) in APP_METRIC_ALARMS.items():
        resources[f"{metric_name}Alarm"] = _alarm(
            f"{prefix}-{name}", description, metric=(METRICS_NAMESPACE, metric_name, stage_dims),
            threshold=threshold)

    outputs: dict[str, Any] = {
        "ImportBucketName": {"Description": "IMPORT_BUCKET: drop folder imports/, exports/ and reports/",
                             "Value": {"Ref": "ImportBucket"}},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        "StaffUserPoolId": {"Description": "The staff console's Cognito user pool (README: the first "
                                           "administrador)", "Value": {"Ref": "StaffUserPool"}},
        "SenderDomain": {"Value": domain},
    }
    for n in (1, 2, 3):
        outputs[f"DkimRecord{n}"] = {
            "Condition": "CreateSenderIdentity",
            "Description": f"CNAME {n} of 3 for Easy DKIM",
            "Value": {"Fn::Join": [" CNAME ", [
                {"Fn::GetAtt": ["SenderIdentity", f"DkimDNSTokenName{n}"]},
                {"Fn::GetAtt": ["SenderIdentity", f"DkimDNSTokenValue{n}"]}]]},
        }

    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{stage_.app_name} ({stage_.name}): generated by `python -m devtools.infra`",
        "Parameters": {
            "AlarmEmail": {"Type": "String", "Default": "",
                           "Description": "Email address subscribed to the alarms (confirm the "
                                          "subscription email); empty for none",
                           "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"},
            "ImportBucketName": {"Type": "String", "Default": "",
                                 "Description": "Name of the import/export bucket; empty for "
                                                f"{prefix}-files-<account>-<region> (the name "
                                                "the static policy file allows)",
                                 "AllowedPattern": r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
            "CreateSenderIdentity": {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
                                     "Description": f"Create the SES identity for {domain} (false "
                                                    "when it already exists in this account and "
                                                    "region, e.g. made by another stage's stack)"},
            "LogRetentionDays": {"Type": "Number", "Default": 365 if stage_.is_production else 30,
                                 "AllowedValues": LOG_RETENTION_VALUES,
                                 "Description": "Retention of the Lambda log groups"},
            "ImportRetentionDays": {"Type": "Number", "Default": 90, "MinValue": 1,
                                    "Description": "Days the core system's files (imports/) and "
                                                   "import reports (reports/) are kept"},
            "ExportRetentionDays": {"Type": "Number", "Default": 3650, "MinValue": 31,
                                    "Description": "Days the payment exports (exports/) are kept"},
        },
        "Conditions": {
            "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
            "HasImportBucketName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ImportBucketName"}, ""]}]},
            "CreateSenderIdentity": {"Fn::Equals": [{"Ref": "CreateSenderIdentity"}, "true"]},
        },
        "Resources": resources,
        "Outputs": outputs,
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- new indexes on an existing stack ------------------------------------------------------------

def index_step(stage_name: str, deployed: dict[str, Any]) -> tuple[dict[str, Any], list[str], int]:
    """The deployed template with one more global secondary index per table, of those this code's
    tables have and the deployed ones lack: DynamoDB creates one GSI per table per update, so a
    stack that needs several is updated in steps. Everything else (the running code included)
    stays as deployed. Returns (template, the ``Table.index`` added, the GSIs still missing after).
    """
    stage_ = stage(stage_name)
    wanted = {t.logical_id: table_resource(t, stage_)["Properties"] for t in tables()}
    step = copy.deepcopy(deployed)
    added: list[str] = []
    left = 0
    for logical_id, resource in step.get("Resources", {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table" or logical_id not in wanted:
            continue
        properties = resource["Properties"]
        have = {index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])}
        missing = [index for index in wanted[logical_id].get("GlobalSecondaryIndexes", [])
                   if index["IndexName"] not in have]
        if not missing:
            continue
        index, left = missing[0], left + len(missing) - 1
        properties.setdefault("GlobalSecondaryIndexes", []).append(index)
        defined = {a["AttributeName"] for a in properties["AttributeDefinitions"]}
        keys = {k["AttributeName"] for k in index["KeySchema"]}
        properties["AttributeDefinitions"] += [a for a in wanted[logical_id]["AttributeDefinitions"]
                                               if a["AttributeName"] in keys - defined]
        added.append(f"{logical_id}.{index['IndexName']}")
    return step, added, left


# --- packaging (devtools/packaging.py builds the zip) -------------------------------------------

def _log(message: str) -> None:
    print(f"[infra] {message}", file=sys.stderr, flush=True)


def package(stage_name: str, build_dir: Path, *, run_lint: bool = True) -> int:
    """``make package``: the committed policy must be current; then the merge template, and
    :func:`devtools.packaging.build` (chalice package, trimming, bytecode, cfn-lint)."""
    from chalicelib.formatting import LOCALE

    started = time.monotonic()
    stage_ = stage(stage_name)
    committed = policy_path(stage_name)
    expected = policy_text(stage_)
    if not committed.exists() or committed.read_text("utf-8") != expected:
        _log(f"{committed.relative_to(ROOT)} is missing or stale: run "
             f"`python -m devtools.infra policy --stage {stage_name} --write` and commit it")
        return 1

    build_dir.mkdir(parents=True, exist_ok=True)
    merge_path = build_dir / f"merge-{stage_name}.json"
    merge_path.write_text(dumps(merge_template(stage_name)), "utf-8")
    _log(f"wrote {merge_path} ({time.monotonic() - started:.1f} s)")
    code = packaging.build(stage_name, merge_path, build_dir / stage_name, locale=LOCALE,
                           run_lint=run_lint)
    if code == 0:
        _log(f"done in {time.monotonic() - started:.1f} s; deploy with `aws cloudformation package` "
             f"+ `aws cloudformation deploy` (README, 'Deploying to AWS')")
    return code


# --- command line ------------------------------------------------------------------------------

def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.infra", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge-template", help="print the CloudFormation merge template")
    merge.add_argument("--stage", default="dev")
    pol = commands.add_parser("policy", help="print (or --write) .chalice/policy-<stage>.json")
    pol.add_argument("--stage", default="dev")
    pol.add_argument("--write", action="store_true", help="write the file instead of printing it")
    pkg = commands.add_parser("package", help="merge template, chalice package, cfn-lint")
    pkg.add_argument("--stage", default="dev")
    pkg.add_argument("--build-dir", type=Path, default=ROOT / "build",
                     help="where merge-<stage>.json and <stage>/ go (default build/)")
    pkg.add_argument("--no-lint", action="store_true")
    step = commands.add_parser("index-step", help="print the deployed template plus one new GSI per table")
    step.add_argument("--stage", default="dev")
    step.add_argument("deployed", type=Path, help="the stack's template (aws cloudformation get-template)")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if args.command == "merge-template":
        sys.stdout.write(dumps(merge_template(args.stage)))
        return 0
    if args.command == "index-step":
        template, added, left = index_step(args.stage, json.loads(args.deployed.read_text("utf-8")))
        if not added:
            _log("no index to add: deploy the package (README, 'Deploying to AWS')")
            return 1
        sys.stdout.write(dumps(template))
        _log(f"adds {', '.join(added)}; {left} more to add after this step")
        return 0
    if args.command == "policy":
        text = policy_text(stage(args.stage))
        if args.write:
            policy_path(args.stage).write_text(text, "utf-8")
            _log(f"wrote {policy_path(args.stage).relative_to(ROOT)}")
        else:
            sys.stdout.write(text)
        return 0
    return package(args.stage, args.build_dir.resolve(), run_lint=not args.no_lint)


if __name__ == "__main__":
    sys.exit(main())
