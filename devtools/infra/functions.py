"""The Lambda functions and their rules, from Chalice's application graph (the code
``chalice package`` runs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from devtools.infra.stages import ROOT


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


def _chalice_resources(stage_name: str) -> list[Any]:
    """The resources of the app's deployment graph as ``chalice package`` builds it (imports app.py).

    ``os.environ`` is left untouched: Chalice's loader gets a copy to put the stage's variables in.
    """
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    factory = CLIFactory(str(ROOT), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name=stage_name)
    application = ApplicationGraphBuilder().build(config, stage_name)
    return list(DependencyBuilder().build_dependencies(application))


def app_graph(stage_name: str) -> AppGraph:
    """The Lambda functions of the app as ``chalice package`` sees them."""
    from chalice.deploy import models as chalice_models
    from chalice.utils import to_cfn_resource_name

    resources = _chalice_resources(stage_name)
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


def import_drop_rules(stage_name: str) -> list[tuple[str, str]]:
    """Back office: ``(function logical id, event logical id)`` of each ``@app.on_cw_event``
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


def stream_sources(stage_name: str) -> list[tuple[str, str]]:
    """``(function logical id, event logical id)`` of each ``@app.on_dynamodb_record`` handler, as
    ``chalice package`` names them."""
    from chalice.deploy import models as chalice_models
    from chalice.utils import to_cfn_resource_name

    return [(to_cfn_resource_name(r.lambda_function.resource_name), to_cfn_resource_name(r.resource_name))
            for r in _chalice_resources(stage_name) if isinstance(r, chalice_models.DynamoDBEventSource)]
