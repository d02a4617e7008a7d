"""The DynamoDB tables, from the PynamoDB models, and the step-by-step addition of new indexes
to a deployed stack.

Retention rule: every table is ``DeletionPolicy``/``UpdateReplacePolicy: Retain`` (and has
deletion protection in prod) unless its entity is listed in :data:`DISPOSABLE_ENTITIES`, which holds
only data that can be lost without losing money, members or evidence: sessions (members sign in
again), rate-limit counters (windows restart), recovery requests (members ask again) and the bank
list cache (re-fetched from the gateway). Payments, gateway events, idempotency claims (they keep
a payment reference from ever being reused), obligations, members and the audit trail are kept.
A model added later is retained unless someone decides otherwise here: the safe default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from devtools.infra.cfn import pascal_case, tags
from devtools.infra.stages import Stage, stage

#: Entities whose tables may be dropped with the stack (see the module docstring).
DISPOSABLE_ENTITIES = frozenset({"sessions", "rate-counters", "recoveries", "bank-list",
                                 "staff-sessions"})


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
    """One :class:`Table` per model of ``ALL_MODELS``, in order: each model's entity, to which
    each stage puts its own prefix in front."""
    from chalicelib.adapters.dynamo import models

    found: list[Table] = []
    for model in models.ALL_MODELS:
        entity = models.entity(model)
        found.append(Table(entity=entity, logical_id=f"{pascal_case(entity)}Table", model=model))
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
    properties["Tags"] = tags(stage_, table.entity)
    policy_ = "Retain" if table.retained else "Delete"
    resource: dict[str, Any] = {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy_,
                                "UpdateReplacePolicy": policy_}
    resource["Properties"] = properties
    return resource


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
