"""Counting and timing DynamoDB round trips, whoever makes them (PynamoDB models, TransactWrite, boto3).

Two hooks, installed for the life of a :class:`DynamoRecorder`:

* ``botocore.client.BaseClient._make_api_call`` (every botocore client's one entry point, the one
  PynamoDB's ``Connection`` calls): the operation, its table(s), and the wall time of the whole
  call (serialize, send, moto, parse) - the "time inside DynamoDB" the overhead measure subtracts.
* moto's ``BotocoreStubber.__call__`` (the ``before-send`` handler every client gets): the HTTP
  requests that actually went "on the wire". Round trips are counted here, so a botocore retry
  would count as the extra trip it is.

Calls made while ``auth.current_session`` (or the console's ``staff_auth.current``) runs are
tagged ``session`` (session validation), so an
action's own trips and its session read are reported apart.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import env  # noqa: F401  (moto first, the tests' environment)


@dataclass
class DynamoCall:
    operation: str
    tables: tuple[str, ...]
    seconds: float
    sends: int
    phase: str  # "action" or "session"


@dataclass
class Tally:
    calls: list[DynamoCall] = field(default_factory=list)

    def trips(self, phase: str | None = None) -> int:
        return sum(c.sends for c in self.calls if phase is None or c.phase == phase)

    @property
    def own(self) -> int:
        return self.trips("action")

    @property
    def session(self) -> int:
        return self.trips("session")

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.calls)

    def describe(self) -> str:
        """``GetItem(members), TransactWriteItems(sessions/audit/members)``: tables without prefix."""
        from chalicelib.config import get_settings

        prefix = f"{get_settings().table_prefix}-"
        return ", ".join(
            f"{c.operation}({'/'.join(t[len(prefix):] if t.startswith(prefix) else t for t in c.tables)})"
            + (f" x{c.sends} requests" if c.sends != 1 else "") for c in self.calls)


def _tables(params: dict[str, Any]) -> tuple[str, ...]:
    if "TableName" in params:
        return (params["TableName"],)
    if "RequestItems" in params:
        return tuple(params["RequestItems"])
    names: list[str] = []
    for item in params.get("TransactItems", []):
        for op in item.values():
            if isinstance(op, dict) and op.get("TableName") and op["TableName"] not in names:
                names.append(op["TableName"])
    return tuple(names)


class DynamoRecorder:
    """Install with ``with DynamoRecorder() as rec:``; read tallies with ``with rec.tally() as t:``."""

    def __init__(self) -> None:
        self._tally: Tally | None = None
        self._phase = "action"
        self._wire = 0
        self._saved: list[tuple[object, str, object]] = []

    # -- install / uninstall ---------------------------------------------------------------------
    def __enter__(self) -> DynamoRecorder:
        from botocore.client import BaseClient
        from moto.core import botocore_stubber

        from chalicelib.services import auth, staff_auth

        recorder = self
        stubber_call = botocore_stubber.BotocoreStubber.__call__  # the tests' serialized one
        api_call = BaseClient._make_api_call
        current_session = auth.current_session
        current_staff = staff_auth.current

        def counting_stubber(stub, event_name, request, **kwargs):  # type: ignore[no-untyped-def]
            target = request.headers.get("X-Amz-Target", b"")
            if isinstance(target, bytes):
                target = target.decode("ascii", "replace")
            if target.startswith("DynamoDB_"):
                recorder._wire += 1
            return stubber_call(stub, event_name, request, **kwargs)

        def timed_api_call(client, operation_name, api_params):  # type: ignore[no-untyped-def]
            tally = recorder._tally
            if tally is None or client.meta.service_model.service_name != "dynamodb":
                return api_call(client, operation_name, api_params)
            wire_before = recorder._wire
            started = time.perf_counter()
            try:
                return api_call(client, operation_name, api_params)
            finally:
                tally.calls.append(DynamoCall(
                    operation=operation_name,
                    tables=_tables(api_params),
                    seconds=time.perf_counter() - started,
                    sends=recorder._wire - wire_before,
                    phase=recorder._phase,
                ))

        def tagged_current_session(*args, **kwargs):  # type: ignore[no-untyped-def]
            outer, recorder._phase = recorder._phase, "session"
            try:
                return current_session(*args, **kwargs)
            finally:
                recorder._phase = outer

        self._patch(botocore_stubber.BotocoreStubber, "__call__", counting_stubber)
        self._patch(BaseClient, "_make_api_call", timed_api_call)
        def tagged_current_staff(*args, **kwargs):  # type: ignore[no-untyped-def]
            outer, recorder._phase = recorder._phase, "session"
            try:
                return current_staff(*args, **kwargs)
            finally:
                recorder._phase = outer

        self._patch(auth, "current_session", tagged_current_session)
        self._patch(staff_auth, "current", tagged_current_staff)
        return self

    def _patch(self, owner: object, name: str, value: object) -> None:
        self._saved.append((owner, name, owner.__dict__[name] if isinstance(owner, type)
                            else getattr(owner, name)))
        setattr(owner, name, value)

    def __exit__(self, *exc: object) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()

    # -- measuring -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def tally(self) -> Iterator[Tally]:
        """Record every DynamoDB call made inside the block."""
        if self._tally is not None:
            raise RuntimeError("tallies do not nest")
        self._tally = Tally()
        try:
            yield self._tally
        finally:
            self._tally = None
