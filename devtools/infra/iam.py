"""IAM: the actions the code calls (each justified here; tests guard the list), and the two
documents that grant one set of permissions:

* :func:`policy`, ``.chalice/policy-<stage>.json`` (committed, static JSON: ``chalice deploy`` and
  the input of ``chalice package``), can only name resources by pattern;
* :func:`role_policy`: the merge template replaces every generated role's ``Policies`` with the
  same actions on the exact ARNs of the resources of the stack (``Fn::GetAtt``/``Fn::Sub``), one
  log group per role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.infra.cfn import sub
from devtools.infra.events import FAILED_EVENTS_QUEUE, events_table, failed_events_queue_name
from devtools.infra.functions import Function
from devtools.infra.stages import ROOT, Stage
from devtools.infra.tables import Table

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
#: ``send_raw_email`` with the MIME it builds.
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

#: The events table's stream: Lambda's event source mapping reads it with the function's role (the
#: four actions AWS documents for a stream trigger; ListStreams names the stream too), and sends a
#: failed batch's description to the failure queue once its retries are spent.
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams"]
FAILED_EVENTS_ACTIONS = ["sqs:SendMessage"]


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
                       [f"arn:aws:sqs:*:*:{failed_events_queue_name(stage_)}"]),
        ],
    }


def policy_text(stage_: Stage) -> str:
    return json.dumps(policy(stage_), indent=2) + "\n"


def policy_path(stage_name: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage_name}.json"


def role_policy(stage_: Stage, tables_: list[Table], functions: list[Function]) -> dict[str, Any]:
    """The same permissions as :func:`policy`, on this stack's exact resources; the log groups are
    those of the functions that use the role (one, unless the config shares a role)."""
    arn = "arn:${AWS::Partition}"
    ssm_parameters = f"{arn}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{stage_.ssm_prefix}*"
    table_arns: list[Any] = []
    for table in tables_:
        table_arns.append({"Fn::GetAtt": [table.logical_id, "Arn"]})
        if table.has_indexes:
            table_arns.append(sub(f"${{{table.logical_id}.Arn}}/index/*"))
    log_groups = f"{arn}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/"
    logs_actions = [a for a in LOGS_ACTIONS if a != "logs:CreateLogGroup"]
    logs_resources: list[Any] = [sub(f"{log_groups}{f.function_name}:*") for f in functions]
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Logs", logs_actions, logs_resources),
            _statement("Tables", DYNAMODB_ACTIONS, table_arns),
            _statement("SendMail", SES_ACTIONS, [
                sub(f"{arn}:ses:${{AWS::Region}}:${{AWS::AccountId}}:identity/{stage_.sender_domain}")]),
            _statement("ReadSecrets", SSM_ACTIONS, [sub(ssm_parameters)]),
            _statement("DecryptSecretsThroughSsm", KMS_ACTIONS,
                       [sub(f"{arn}:kms:${{AWS::Region}}:${{AWS::AccountId}}:key/*")], {
                           "StringEquals": {"kms:ViaService": sub("ssm.${AWS::Region}.amazonaws.com")},
                           "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": sub(ssm_parameters)},
                       }),
            _statement("ImportExportObjects", S3_OBJECT_ACTIONS, [sub("${ImportBucket.Arn}/*")]),
            _statement("ImportExportBucket", S3_BUCKET_ACTIONS, [{"Fn::GetAtt": ["ImportBucket", "Arn"]}]),
            _statement("StaffDirectory", COGNITO_ACTIONS, [{"Fn::GetAtt": ["StaffUserPool", "Arn"]}]),
            _statement("ReadEventsStream", STREAM_ACTIONS,
                       [sub(f"${{{events_table(tables_).logical_id}.Arn}}/stream/*")]),
            _statement("FailedEvents", FAILED_EVENTS_ACTIONS, [{"Fn::GetAtt": [FAILED_EVENTS_QUEUE, "Arn"]}]),
        ],
    }
