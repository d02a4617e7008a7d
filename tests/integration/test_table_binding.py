"""adapters/dynamo/models.bind_tables: importing the models reads no settings; binding names every
table after the settings, is idempotent, and rebinding moves the models (connections included)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from moto import mock_aws

from chalicelib.adapters.dynamo import models
from chalicelib.config import get_settings
from tests.conftest import ROOT


def test_importing_the_models_reads_no_configuration() -> None:
    code = ("import sys; from chalicelib.adapters.dynamo import models; "
            "assert 'chalicelib.config' not in sys.modules, 'config imported'; "
            "assert not hasattr(models.Member.Meta, 'table_name'), models.Member.Meta.table_name")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_table_is_named_after_the_settings_prefix_and_entity() -> None:
    settings = get_settings()
    models.bind_tables(settings)
    models.bind_tables(settings)  # idempotent
    assert [m.Meta.table_name for m in models.ALL_MODELS] == [
        f"{settings.table_prefix}-{models.entity(m)}" for m in models.ALL_MODELS]
    assert {m.Meta.region for m in models.ALL_MODELS} == {settings.region}
    assert len({models.entity(m) for m in models.ALL_MODELS}) == len(models.ALL_MODELS)


def test_rebinding_moves_the_models_to_the_other_tables_and_region() -> None:
    settings = get_settings()
    elsewhere = replace(settings, table_prefix="otro-stage", region="eu-west-1")
    try:
        with mock_aws():
            models.bind_tables(settings)
            models.Member.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
            assert models.Member.exists()
            models.bind_tables(replace(settings, region="eu-west-1"))  # same names, other region
            assert not models.Member.exists()
            models.bind_tables(elsewhere)
            assert models.Member.Meta.table_name == "otro-stage-members"
            assert not models.Member.exists()
            models.bind_tables(settings)
            assert models.Member.exists()
    finally:
        models.bind_tables(settings)
