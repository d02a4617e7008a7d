"""Create and delete the application's DynamoDB tables (local runner, tests; AWS uses the template).

Every model in :data:`ALL_MODELS` is covered, so a model appended there later is created too.
``Model.create_table`` also creates the indexes and enables TTL for models with a ``TTLAttribute``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.exceptions import TableError

from chalicelib.adapters.dynamo.models import ALL_MODELS, bind_tables
from chalicelib.adapters.dynamo.repositories import aws_error_code

if TYPE_CHECKING:
    from chalicelib.config import Settings


def _already_exists(exc: TableError) -> bool:
    return aws_error_code(exc) == "ResourceInUseException"


def create_all_tables(settings: Settings) -> list[str]:
    """Create every missing table of ``settings`` (idempotent), the models bound to them; return
    the names of the tables created."""
    bind_tables(settings)
    created: list[str] = []
    for model in ALL_MODELS:
        if model.exists():
            continue
        try:
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        except TableError as exc:  # created meanwhile by another process
            if not _already_exists(exc):
                raise
            continue
        created.append(model.Meta.table_name)
    return created


def delete_all_tables() -> list[str]:
    """Delete every existing table of the application (tests only); return the names deleted."""
    deleted: list[str] = []
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()
            deleted.append(model.Meta.table_name)
    return deleted
