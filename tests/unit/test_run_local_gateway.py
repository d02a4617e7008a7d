"""``GATEWAY=placetopay make run``: the local stage leaves the gateway to the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.run_local import apply_environment, local_stage_env


def test_the_local_stage_does_not_pin_the_gateway() -> None:
    # chalice local applies the stage's variables over the process's: a GATEWAY there would win.
    assert "GATEWAY" not in local_stage_env()
    assert {"PLACETOPAY_LOGIN", "PLACETOPAY_SECRET_KEY", "WOMPI_ENVIRONMENT"} <= set(local_stage_env())


@pytest.fixture
def restored_environment() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("chosen, expected", [("placetopay", "placetopay"), (None, "wompi")])
def test_the_runner_keeps_the_gateway_the_environment_chose(
        restored_environment: None, chosen: str | None, expected: str) -> None:
    from chalicelib.config import Settings

    os.environ.pop("GATEWAY", None)
    if chosen:
        os.environ["GATEWAY"] = chosen
    apply_environment(8000)
    assert Settings.from_env(os.environ).gateway == expected
    assert Settings.from_env(os.environ).placetopay_notification_url == (
        "http://localhost:8000/webhooks/placetopay")
