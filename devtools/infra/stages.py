"""The deployable stages, read from ``.chalice/config.json`` (names, prefixes, the sender)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / ".chalice" / "config.json"


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
    config: dict[str, Any] = json.loads(CONFIG_PATH.read_text("utf-8"))
    return config


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
