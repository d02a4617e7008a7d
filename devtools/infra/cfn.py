"""Small CloudFormation helpers shared by the generated resources."""

from __future__ import annotations

import json
from typing import Any

from devtools.infra.stages import Stage


def pascal_case(text: str) -> str:
    """``rate-counters`` or ``import_from_s3`` as a logical-id part: ``RateCounters``."""
    return "".join(part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-") if part)


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def tags(stage_: Stage, component: str) -> list[dict[str, str]]:
    return [{"Key": "app", "Value": stage_.app_name}, {"Key": "stage", "Value": stage_.name},
            {"Key": "component", "Value": component}]


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
