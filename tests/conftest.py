"""Shared fixtures: moto in process (serialized, like DynamoDB), a controllable clock, the app client.

The local stage's environment from .chalice/config.json is applied before anything imports the app,
with test-friendly overrides: bcrypt cost 4, no response floor.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots, axe reports, the fuzzing figure (kept by CI)
_config = json.loads((ROOT / ".chalice" / "config.json").read_text("utf-8"))
for _key, _value in {**_config["environment_variables"],
                     **_config["stages"]["local"]["environment_variables"]}.items():
    os.environ.setdefault(_key, _value)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "BCRYPT_COST": "4",
    "RECOVERY_RESPONSE_FLOOR_MS": "0",
    "PUBLIC_BASE_URL": "http://localhost:8000",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

# TEST_CLOCK moves the wall clock of this process and of the local stacks it starts (devtools/clock.py).
from devtools import clock as moved_clock  # noqa: E402

moved_clock.apply_from_environment()


def pytest_report_header() -> str | None:
    moved = os.environ.get(moved_clock.TEST_CLOCK_ENV)
    return f"clock moved: the run started at {moved} ({moved_clock.TEST_CLOCK_ENV})" if moved else None

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402  (before anything creates a botocore client)
from moto.core import botocore_stubber  # noqa: E402

# Shared fixtures (gateway, make_obligation, dynamo_calls, browser) for every test module.
pytest_plugins = ["tests.payment_support", "tests.page_support", "tests.staff_support"]

# DynamoDB makes each item's conditional write atomic; moto does not under threads (SPEC §8).
_moto_lock = threading.RLock()
_original_call = botocore_stubber.BotocoreStubber.__call__


def _serialized_call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    with _moto_lock:
        return _original_call(self, *args, **kwargs)


botocore_stubber.BotocoreStubber.__call__ = _serialized_call  # type: ignore[method-assign]


class FakeClock:
    """A clock tests move by hand (never sleep in tests)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from chalicelib.context import Runtime

    fake = FakeClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    monkeypatch.setattr(Runtime, "clock", staticmethod(fake))
    return fake


@pytest.fixture
def aws() -> Iterator[None]:
    from chalicelib.adapters.dynamo.models import ALL_MODELS, bind_tables
    from chalicelib.config import get_settings
    from chalicelib.context import reset_contexts

    bind_tables(get_settings())
    with mock_aws():
        for model in ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        import boto3

        ses = boto3.client("ses", region_name="us-east-1")
        ses.verify_domain_identity(Domain="coopejemplo.example")
        reset_contexts()
        yield
        reset_contexts()


@pytest.fixture(params=["dynamo", "fake"])
def units(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Units of work of both kinds, for the contract tests every repository must pass alike:
    DynamoDB's (on moto) and the in-memory fake's (``tests/fakes.py``)."""
    if request.param == "dynamo":
        from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

        request.getfixturevalue("aws")
        yield DynamoUnitOfWork
    else:
        from tests.fakes import FakeStore

        yield FakeStore().unit_of_work


@pytest.fixture
def ctx(aws: None, clock: FakeClock):  # type: ignore[no-untyped-def]
    from chalicelib.context import get_context

    return get_context()


@pytest.fixture
def client(aws: None, clock: FakeClock):  # type: ignore[no-untyped-def]
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


class RawEmail:
    """A ``SendRawEmail`` message read back like moto's simple ones (subject, body, destinations),
    plus its text part, headers and attachments as ``(filename, content_type, bytes)``."""

    def __init__(self, raw) -> None:  # type: ignore[no-untyped-def]
        import email
        from email import policy
        from email.utils import getaddresses

        message = email.message_from_string(raw.raw_data, policy=policy.default)
        self.id = raw.id
        self.source = raw.source
        self.message = message
        self.subject = str(message["Subject"])
        self.destinations = {"ToAddresses": [a for _, a in getaddresses([str(message["To"])])]}
        html = message.get_body(preferencelist=("html",))
        text = message.get_body(preferencelist=("plain",))
        self.body = html.get_content() if html is not None else ""
        self.text = text.get_content() if text is not None else ""
        self.attachments = [(part.get_filename(), part.get_content_type(), part.get_content())
                             for part in message.iter_attachments()]

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)


def concurrently(work: Callable[[int], Any], count: int) -> list[Any]:
    """``work(index)`` in ``count`` threads released together; each result or the exception raised."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def raised(results: list[Any]) -> list[Exception]:
    """The exceptions among :func:`concurrently`'s results."""
    return [r for r in results if isinstance(r, Exception)]


def sent_emails() -> list:
    """What SES accepted, oldest first; raw MIME messages are parsed (see :class:`RawEmail`)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses import ses_backends
    from moto.ses.models import RawMessage

    return [RawEmail(m) if isinstance(m, RawMessage) else m
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages]


def recovery_from_email(message) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The link token and temporary key of a recovery email."""
    token = re.search(r"cambiar-clave\?token=([A-Za-z0-9_\-]+)", message.body).group(1)
    key = re.search(r">([A-Z2-9]{10})<", message.body).group(1)
    return token, key


@pytest.fixture
def make_member(aws: None):  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Member

    def factory(document_number: str = "1020304050", *, password: str | None = None,
                status: str = "ACTIVO", email: str | None = "ana.perez@correo.example",
                full_name: str = "Ana María Pérez") -> Member:
        from chalicelib.context import get_context

        member = Member(document_number=document_number, document_type="CC", full_name=full_name,
                        email=email, phone="3001234567", status=status)
        if password:
            member.password_hash = get_context().hasher.hash(password)
        member.save()
        return member

    return factory
