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

The modules: :mod:`.stages` (the config), :mod:`.tables` (tables, their retention rule, new
indexes), :mod:`.functions` (Chalice's graph), :mod:`.iam` (actions and policies), :mod:`.alarms`,
:mod:`.api`, :mod:`.staff` (the staff user pool), :mod:`.events` (the events stream's mapping),
:mod:`.template` (the merge template), :mod:`.cli` (the command line and ``make package``);
:mod:`.cfn` has the shared helpers.
This package's namespace is the public surface the tests, ``devtools.chalice_local`` and the
benchmarks use.
"""

from devtools.infra.alarms import (
    METRIC_FLAGGED_FOR_REVIEW,
    METRIC_WEBHOOK_SIGNATURE_FAILURES,
    METRICS_NAMESPACE,
)
from devtools.infra.api import GATEWAY_RESPONSE_HEADERS, NOT_FOUND_BODY, api_name
from devtools.infra.cfn import dumps
from devtools.infra.cli import main, package
from devtools.infra.functions import AppGraph, Function, app_graph, import_drop_rules, stream_sources
from devtools.infra.iam import STREAM_ACTIONS, policy, policy_path, policy_text, role_policy
from devtools.infra.stages import ROOT, Stage, deployable_stages, load_config, stage
from devtools.infra.tables import DISPOSABLE_ENTITIES, Table, index_step, tables
from devtools.infra.template import merge_template

__all__ = [
    "DISPOSABLE_ENTITIES", "GATEWAY_RESPONSE_HEADERS", "METRICS_NAMESPACE", "METRIC_FLAGGED_FOR_REVIEW",
    "METRIC_WEBHOOK_SIGNATURE_FAILURES", "NOT_FOUND_BODY", "ROOT", "STREAM_ACTIONS", "AppGraph", "Function",
    "Stage", "Table",
    "api_name", "app_graph", "deployable_stages", "dumps", "import_drop_rules", "index_step", "load_config",
    "main", "merge_template", "package", "policy", "policy_path", "policy_text", "role_policy", "stage",
    "stream_sources", "tables",
]
