"""Deployment infrastructure (SPEC §5): the generated merge template and the IAM policy files
(devtools/infra/); the package itself: tests/integration/test_packaging.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import infra

ROOT = Path(__file__).resolve().parents[2]
STAGES = infra.deployable_stages()


def test_dev_and_prod_are_deployable_stages() -> None:
    assert {"dev", "prod"} <= set(STAGES)
    assert "local" not in STAGES


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {name: infra.merge_template(name) for name in STAGES}


@pytest.fixture(scope="module")
def moto_tables() -> dict[str, dict[str, Any]]:
    """What the PynamoDB models create (as the local runner does), by entity, read back from moto."""
    from chalicelib.adapters.dynamo import models
    from chalicelib.config import get_settings

    models.bind_tables(get_settings())
    found: dict[str, dict[str, Any]] = {}
    with mock_aws():
        client = boto3.client("dynamodb", region_name=models.Member.Meta.region)
        for model in models.ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
            name = model.Meta.table_name
            ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            found[models.entity(model)] = {"table": client.describe_table(TableName=name)["Table"],
                                           "ttl": ttl}
    return found


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    """HASH first: DynamoDB's order (the template must already be in it)."""
    return sorted(((k["AttributeName"], k["KeyType"]) for k in schema), key=lambda k: k[1] != "HASH")


def _indexes(indexes: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {i["IndexName"]: {"keys": _keys(i["KeySchema"]),
                             "projection": i["Projection"]["ProjectionType"],
                             "non_key": sorted(i["Projection"].get("NonKeyAttributes", []))}
            for i in indexes or []}


def _attributes(table: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"])


def _template_tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {logical_id: resource for logical_id, resource in template["Resources"].items()
            if resource.get("Type") == "AWS::DynamoDB::Table"}


@pytest.mark.parametrize("stage_name", STAGES)
def test_template_tables_match_the_pynamodb_models(stage_name: str, templates, moto_tables) -> None:
    """One table per model: same keys, attribute definitions, indexes, projections and TTL as
    ``Model.create_table`` makes in moto; nothing more, nothing less."""
    stage = infra.stage(stage_name)
    by_name = {r["Properties"]["TableName"]: r for r in _template_tables(templates[stage_name]).values()}
    expected_names = {f"{stage.table_prefix}-{entity}" for entity in moto_tables}
    assert set(by_name) == expected_names

    for entity, created in moto_tables.items():
        table, ttl = created["table"], created["ttl"]
        resource = by_name[f"{stage.table_prefix}-{entity}"]
        props = resource["Properties"]
        where = f"{stage_name}/{entity}"

        assert _keys(props["KeySchema"]) == _keys(table["KeySchema"]), where
        assert props["KeySchema"][0]["KeyType"] == "HASH", where  # already in DynamoDB's order
        assert _attributes(props) == _attributes(table), where
        template_gsis = _indexes(props.get("GlobalSecondaryIndexes"))
        assert template_gsis == _indexes(table.get("GlobalSecondaryIndexes")), where
        for index in props.get("GlobalSecondaryIndexes", []):
            assert index["KeySchema"][0]["KeyType"] == "HASH", (where, index["IndexName"])
        template_lsis = _indexes(props.get("LocalSecondaryIndexes"))
        assert template_lsis == _indexes(table.get("LocalSecondaryIndexes")), where

        if ttl.get("TimeToLiveStatus") == "ENABLED":
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl["AttributeName"],
                                                        "Enabled": True}, where
        else:
            assert "TimeToLiveSpecification" not in props, where

        assert props["BillingMode"] == "PAY_PER_REQUEST", where
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, where
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}, where
        kept = "Delete" if entity in infra.DISPOSABLE_ENTITIES else "Retain"
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == kept, where


def test_money_and_member_tables_are_retained(templates) -> None:
    names = {r["Properties"]["TableName"].removeprefix("sucursal-virtual-prod-"): r
             for r in _template_tables(templates["prod"]).values()}
    for entity in ("members", "obligations", "audit", "payments", "gateway-events", "idempotency"):
        if entity in names:
            assert names[entity]["DeletionPolicy"] == "Retain", entity
            assert names[entity]["Properties"]["DeletionProtectionEnabled"] is True, entity
    for entity in ("sessions", "rate-counters", "recoveries"):
        assert names[entity]["DeletionPolicy"] == "Delete", entity


# --- IAM -----------------------------------------------------------------------------------------

def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _actions(document: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in _statements(document):
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def _assert_least_privilege(document: dict[str, Any], where: str) -> None:
    for statement in _statements(document):
        assert statement["Effect"] == "Allow", where
        assert "NotAction" not in statement and "NotResource" not in statement, where
        resources = statement["Resource"]
        assert resources != "*" and "*" not in resources, (where, statement["Sid"])
    for action in _actions(document):
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), (where, action)  # no wildcard


@pytest.mark.parametrize("stage_name", STAGES)
def test_policy_files_are_the_generated_ones(stage_name: str) -> None:
    committed = infra.policy_path(stage_name)
    assert committed.exists(), f"run: python -m devtools.infra policy --stage {stage_name} --write"
    assert committed.read_text("utf-8") == infra.policy_text(infra.stage(stage_name)), (
        f"{committed.name} is stale: python -m devtools.infra policy --stage {stage_name} --write")
    document = json.loads(committed.read_text("utf-8"))
    _assert_least_privilege(document, committed.name)
    stage = infra.stage(stage_name)
    text = json.dumps(document)
    assert f"table/{stage.table_prefix}-*" in text
    assert f"parameter{stage.ssm_prefix}*" in text
    assert "cloudwatch:PutMetricData" not in text  # EMF goes through the logs


#: Calls in the deployed code and the IAM action each needs. A call that needs an action the policy
#: does not grant fails here, before it fails in AWS with AccessDenied.
CALLS = [
    (r"\.scan\(", "dynamodb:Scan"),
    (r"\bcondition_check\(", "dynamodb:ConditionCheckItem"),
    (r"TransactGet|transact_get_items", "dynamodb:GetItem"),
    (r"\.describe_table\(", "dynamodb:DescribeTable"),
    (r"\.(create|delete|update)_table\(", "dynamodb:CreateTable"),
    (r"\bbatch_get(_item)?\(", "dynamodb:BatchGetItem"),
    (r"\bbatch_write(_item)?\(", "dynamodb:BatchWriteItem"),
    (r"TransactWrite|transact_write_items", "dynamodb:PutItem"),
    (r"\.send_email\(", "ses:SendEmail"),
    (r"\.send_raw_email\(", "ses:SendRawEmail"),
    (r"\.send_bulk_templated_email\(|\.send_templated_email\(", "ses:SendTemplatedEmail"),
    (r"\.get_parameter\(", "ssm:GetParameter"),
    (r"\.get_parameters\(", "ssm:GetParameters"),
    (r"\.get_parameters_by_path\(", "ssm:GetParametersByPath"),
    (r"\.get_secret_value\(", "secretsmanager:GetSecretValue"),
    (r"\.(get_object|head_object|download_file|download_fileobj)\(", "s3:GetObject"),
    (r"\.(put_object|upload_file|upload_fileobj|copy_object)\(", "s3:PutObject"),
    (r"\.list_objects(_v2)?\(", "s3:ListBucket"),
    (r"\.delete_objects?\(", "s3:DeleteObject"),
    (r"\.put_metric_data\(", "cloudwatch:PutMetricData"),
    (r"\.(publish)\(", "sns:Publish"),
    (r"\.send_message\(", "sqs:SendMessage"),
    (r"\.put_events\(", "events:PutEvents"),
    (r'"admin_list_groups_for_user"', "cognito-idp:AdminListGroupsForUser"),
    (r'"list_users"', "cognito-idp:ListUsers"),
    (r'"list_users_in_group"', "cognito-idp:ListUsersInGroup"),
    (r'"admin_create_user"', "cognito-idp:AdminCreateUser"),
    (r'"admin_add_user_to_group"', "cognito-idp:AdminAddUserToGroup"),
    (r'"admin_remove_user_from_group"', "cognito-idp:AdminRemoveUserFromGroup"),
    (r'"admin_(en|dis)able_user"', "cognito-idp:AdminDisableUser"),
    (r'"admin_user_global_sign_out"', "cognito-idp:AdminUserGlobalSignOut"),
]
#: Services the policy covers; a boto3 client for anything else needs a new statement.
COVERED_SERVICES = {"dynamodb", "ses", "ssm", "s3", "cognito-idp"}
#: Local and test helpers shipped in chalicelib but never run in AWS (they create tables).
NOT_DEPLOYED_PATHS = {"chalicelib/adapters/dynamo/tables.py"}


def _deployed_sources() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    return [f for f in files if f.relative_to(ROOT).as_posix() not in NOT_DEPLOYED_PATHS]


def test_every_aws_call_in_the_code_is_granted() -> None:
    granted = _actions(json.loads(infra.policy_path("prod").read_text("utf-8")))
    missing: list[str] = []
    for path in _deployed_sources():
        source = path.read_text("utf-8")
        for pattern, action in CALLS:
            if re.search(pattern, source) and action not in granted:
                missing.append(f"{path.relative_to(ROOT)}: {pattern} needs {action}")
        for service in re.findall(r"""boto3\.(?:client|resource)\(\s*["']([\w-]+)["']""", source):
            if service not in COVERED_SERVICES:
                missing.append(f"{path.relative_to(ROOT)}: boto3 {service} is not covered by the policy")
    assert not missing, "grant in devtools/infra/iam.py (and justify), regenerate:\n" + "\n".join(missing)


@pytest.mark.parametrize("stage_name", STAGES)
def test_merge_template_patches_every_function(stage_name: str, templates) -> None:
    template = templates[stage_name]
    resources = template["Resources"]
    graph = infra.app_graph(stage_name)
    assert any(f.logical_id == "APIHandler" for f in graph.functions)
    static = _actions(json.loads(infra.policy_path(stage_name).read_text("utf-8")))
    for function in graph.functions:
        patch = resources[function.logical_id]["Properties"]
        assert patch["Environment"]["Variables"]["IMPORT_BUCKET"] == {"Ref": "ImportBucket"}
        assert patch["FunctionName"] == function.function_name
        assert f"{function.logical_id}ErrorsAlarm" in resources
        assert f"{function.logical_id}ThrottlesAlarm" in resources
        assert function.role_logical_id, "autogen_policy is false: Chalice makes one role per function"
        policies = resources[function.role_logical_id]["Properties"]["Policies"]
        assert len(policies) == 1
        document = policies[0]["PolicyDocument"]
        _assert_least_privilege(document, function.role_logical_id)
        # Same actions as the static file, less CreateLogGroup (the template creates the groups).
        assert _actions(document) == static - {"logs:CreateLogGroup"}
        text = json.dumps(document)
        assert f"/aws/lambda/{function.function_name}:*" in text
        assert "ImportBucket.Arn" in text
    table_ids = set(_template_tables(template))
    assert {f"{t}ThrottlesAlarm" for t in table_ids} <= set(resources)
    assert resources["RestAPI"]["Properties"]["Name"] == infra.api_name(infra.stage(stage_name))
    assert resources["ApiServerErrorRateAlarm"]["DependsOn"] == ["RestAPI"]
    for alarm in ("PaymentsFlaggedForReviewAlarm", "WebhookSignatureFailuresAlarm"):
        assert resources[alarm]["Properties"]["Namespace"] == "SucursalVirtual"


def test_gateway_answers_carry_the_request_id_and_the_apps_security_headers(templates) -> None:
    from chalicelib.config import get_settings
    from chalicelib.web.http import security_headers

    body = templates["prod"]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN"}
    app_headers = security_headers(get_settings(), "/")
    for response in responses.values():
        headers = {name.removeprefix("gatewayresponse.header."): value
                   for name, value in response["responseParameters"].items()}
        assert headers["X-Request-Id"] == "context.requestId"
        for name, value in headers.items():
            if name not in ("X-Request-Id", "Content-Security-Policy", "Referrer-Policy"):
                assert value == f"'{app_headers[name]}'", name
    not_found = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["statusCode"] == 404
    error = json.loads(not_found["responseTemplates"]["application/json"])["error"]
    assert error["code"] == "not_found" and error["message"].startswith("La dirección")


def test_merge_template_command_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "devtools.infra", "merge-template", "--stage", "dev"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=clean_env())
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    assert template["Resources"]["MembersTable"]["Properties"]["TableName"] == "sucursal-virtual-dev-members"


def test_index_step_adds_one_gsi_per_table_until_the_stack_has_them_all(tmp_path: Path) -> None:
    """A stack deployed before obligations and payments had their new indexes: three
    steps (payments gains 3), each adding at most one GSI per table with its key attributes."""
    wanted = infra.merge_template("prod")["Resources"]
    new = {"ObligationsTable": {"by_due_date", "open_by_import"},
           "PaymentsTable": {"export_queue", "by_export", "by_status"}}
    deployed = json.loads(json.dumps({"Resources": {k: wanted[k] for k in new}}))
    for logical_id, names in new.items():
        properties = deployed["Resources"][logical_id]["Properties"]
        properties["GlobalSecondaryIndexes"] = [i for i in properties["GlobalSecondaryIndexes"]
                                                if i["IndexName"] not in names]
        used = {k["AttributeName"] for k in properties["KeySchema"]} | {
            k["AttributeName"] for i in properties["GlobalSecondaryIndexes"] for k in i["KeySchema"]}
        properties["AttributeDefinitions"] = [a for a in properties["AttributeDefinitions"]
                                              if a["AttributeName"] in used]

    steps, lefts = [], []
    while True:
        step, added, left = infra.index_step("prod", deployed)
        if not added:
            break
        assert len({name.split(".")[0] for name in added}) == len(added)  # one per table
        steps.append(added)
        lefts.append(left)
        deployed = step
    assert len(steps) == 3 and lefts == [3, 1, 0]
    for logical_id in new:  # the same table as a fresh stack's, but for the order of the lists
        got, expected = deployed["Resources"][logical_id]["Properties"], wanted[logical_id]["Properties"]
        assert _indexes(got["GlobalSecondaryIndexes"]) == _indexes(expected["GlobalSecondaryIndexes"])
        assert _attributes(got) == _attributes(expected)


def clean_env() -> dict[str, str]:
    """This process's environment without the local stage's variables (conftest sets them)."""
    config = infra.load_config()
    local = {**config["environment_variables"], **config["stages"]["local"]["environment_variables"]}
    return {k: v for k, v in os.environ.items() if k not in local}


@pytest.mark.parametrize("stage_name", STAGES)
def test_the_events_stream_feeds_its_function_with_retries_and_a_failure_queue(
        stage_name: str, templates) -> None:
    """The events table streams new images (and expires them by TTL); Chalice's packaged mapping
    gets this stack's stream, partial batch answers, bisection, bounded retries and the failure
    queue; every role reads that stream and sends to that queue (the static file by pattern)."""
    from app import EVENTS_MAX_RETRIES, EVENTS_STREAM_PLACEHOLDER

    resources = templates[stage_name]["Resources"]
    table = resources["EventsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    ((function_id, event_id),) = infra.stream_sources(stage_name)
    assert event_id.endswith("DynamodbEventSource")
    mapping = resources[function_id]["Properties"]["Events"][event_id]["Properties"]
    assert mapping["Stream"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]} != EVENTS_STREAM_PLACEHOLDER
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == EVENTS_MAX_RETRIES > 0
    queue = {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue}}
    assert resources["FailedEventsQueue"]["Type"] == "AWS::SQS::Queue"
    alarm = resources["FailedEventsQueueAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
    (function,) = [f for f in infra.app_graph(stage_name).functions if f.logical_id == function_id]
    role = resources[function.role_logical_id]
    statements = {s["Sid"]: s for s in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["ReadEventsStream"]["Resource"] == [{"Fn::Sub": "${EventsTable.Arn}/stream/*"}]
    assert set(statements["ReadEventsStream"]["Action"]) == set(infra.STREAM_ACTIONS)
    assert statements["FailedEvents"]["Resource"] == [queue]
    static = {s["Sid"]: s for s in json.loads(infra.policy_path(stage_name).read_text("utf-8"))["Statement"]}
    prefix = infra.stage(stage_name).table_prefix
    assert static["ReadEventsStream"]["Resource"] == [f"arn:aws:dynamodb:*:*:table/{prefix}-events/stream/*"]
