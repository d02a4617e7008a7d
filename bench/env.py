"""The benchmark's environment: exactly the tests' one, plus small helpers every measure shares.

Importing this module loads ``tests/conftest.py`` by path, so the process gets the very same set-up
as the test suite (the local stage's variables from ``.chalice/config.json``, fake AWS credentials,
``AWS_DEFAULT_REGION``, bcrypt cost 4, no recovery response floor, no ``AWS_ENDPOINT_URL``, and
moto's request handling serialized like DynamoDB's per-item atomicity). Nothing of conftest is
copied here: when the tests' environment changes, the benchmark's changes with it.

Import this module before anything that creates a botocore client (moto must be imported first).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import itertools
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _load_conftest():  # type: ignore[no-untyped-def]
    name = "_bench_tests_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "conftest.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("tests/conftest.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


conftest = _load_conftest()

#: The environment the tests run with (a snapshot taken right after conftest applied it).
TEST_ENV: dict[str, str] = dict(os.environ)

#: Public origin of the local stage (what browsers send as ``Origin``).
ORIGIN = "http://localhost:8000"


def subprocess_env() -> dict[str, str]:
    """The tests' environment for a child interpreter, with bytecode caching left ON.

    ``PYTHONDONTWRITEBYTECODE`` is removed so the first (discarded) runs write ``__pycache__`` and
    the measured runs import from warm ``.pyc`` files, as a reused Lambda image would.
    """
    env = dict(TEST_ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("AWS_ENDPOINT_URL", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextlib.contextmanager
def env_overrides(**values: str) -> Iterator[None]:
    """Set environment variables for a block (settings are read lazily, contexts are reset)."""
    from chalicelib.context import reset_contexts

    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    reset_contexts()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_contexts()


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then freeze the objects alive now (modules, moto, the tables) for a timed block.

    Python's full collections otherwise rescan the benchmark's own large heap (moto and its
    models) and add pauses of a few hundred ms that a Lambda's smaller heap would not have; the
    objects the measured code allocates are still collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class BenchClock:
    """A clock the benchmark moves by hand, like the tests' FakeClock (no waiting, no drift)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextlib.contextmanager
def bench_clock(start: datetime | None = None) -> Iterator[BenchClock]:
    """Replace ``Runtime.clock`` (the app's only clock) for a block."""
    from chalicelib.context import Runtime

    clock = BenchClock(start)
    original = Runtime.__dict__["clock"]
    Runtime.clock = staticmethod(clock)  # type: ignore[assignment]
    try:
        yield clock
    finally:
        Runtime.clock = original  # type: ignore[assignment]


@contextlib.contextmanager
def aws() -> Iterator[None]:
    """moto in process with every table of ``ALL_MODELS`` and a verified SES domain.

    The same set-up as the tests' ``aws`` fixture (a fixture cannot be called outside pytest).
    """
    from moto import mock_aws

    from chalicelib.adapters.dynamo.models import ALL_MODELS, bind_tables
    from chalicelib.config import get_settings
    from chalicelib.context import reset_contexts

    bind_tables(get_settings())
    with mock_aws():
        for model in ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        import boto3

        boto3.client("ses", region_name="us-east-1").verify_domain_identity(
            Domain="coopejemplo.example")
        reset_contexts()
        try:
            yield
        finally:
            reset_contexts()


_ips = itertools.count(1)


def fresh_ip() -> str:
    """A client address never used before in this process (per-IP throttles start empty)."""
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


_documents = itertools.count(1)


def fresh_document() -> str:
    """A well-formed document number no other benchmark step uses."""
    return f"77{next(_documents):08d}"


def make_member(document_number: str | None = None, *, password: str | None = None,
                email: str | None = "asociado.bench@correo.example", status: str = "ACTIVO"):  # type: ignore[no-untyped-def]
    """A member row (hash made with the current context's bcrypt cost), like the tests' factory."""
    from chalicelib.adapters.dynamo.models import Member
    from chalicelib.context import get_context

    member = Member(document_number=document_number or fresh_document(), document_type="CC",
                    full_name="Asociado de Prueba", email=email, phone="3001234567", status=status)
    if password:
        member.password_hash = get_context().hasher.hash(password)
    member.save()
    return member


def app_client():  # type: ignore[no-untyped-def]
    """``chalice.test.Client`` on the real app, local stage (as the tests' ``client`` fixture)."""
    from chalice.test import Client

    from app import app

    return Client(app, stage_name="local", project_dir=str(ROOT))
