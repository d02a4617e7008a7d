"""Secrets: an environment variable in the local stage, SSM Parameter Store elsewhere.

A secret named ``SIGNING_KEY`` is read from the environment variable ``SIGNING_KEY`` when it is
set (only the local stage sets secrets in ``.chalice/config.json``); otherwise from the SSM
SecureString ``{SSM_PREFIX}signing-key``, fetched once per Lambda container and cached.
"""

from __future__ import annotations

import os
import threading

from chalicelib.config import ConfigError, Settings

_cache: dict[str, str] = {}
_lock = threading.Lock()


def ssm_parameter_name(settings: Settings, name: str) -> str:
    return f"{settings.ssm_prefix}{name.lower().replace('_', '-')}"


def get_secret(settings: Settings, name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if not settings.ssm_prefix:
        raise ConfigError(f"secret {name} is not configured (set it or SSM_PREFIX)")
    key = ssm_parameter_name(settings, name)
    with _lock:
        if key not in _cache:
            import boto3  # lazy: off the cold-start path

            client = boto3.client("ssm", region_name=settings.region)
            response = client.get_parameter(Name=key, WithDecryption=True)
            _cache[key] = response["Parameter"]["Value"]
        return _cache[key]
