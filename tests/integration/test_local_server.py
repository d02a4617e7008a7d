"""The local runner's servers take a payday burst: 250 connections open at once, none reset.

``chalice local`` keeps ``socketserver``'s listen backlog of 5: a burst of connections overflows
it and the kernel resets or drops the ones it cannot queue. The runner's servers listen with
``devtools.serving.LISTEN_BACKLOG`` and a thread per connection.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import concurrently, raised
from tests.stack_support import running_stack

CONNECTIONS = 250


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    with running_stack() as handle:
        yield handle


def _burst(url: str, path: str, count: int = CONNECTIONS) -> list[Any]:
    """``count`` connections opened together, all held open, then one request on each."""
    parts = urlsplit(url)
    all_open = threading.Barrier(count)

    def ask(index: int) -> int:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=90)
        try:
            connection.connect()
            all_open.wait(timeout=60)
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    return concurrently(ask, count)


def test_chalice_local_takes_250_concurrent_connections_without_a_reset(stack: Any) -> None:
    results = _burst(stack.app_url, "/")
    assert raised(results) == [], {type(e).__name__ for e in raised(results)}
    assert results == [200] * CONNECTIONS


@pytest.mark.parametrize("server", ["sandbox_url", "outbox_url", "moto_url"])
def test_the_runners_other_servers_take_the_same_burst(stack: Any, server: str) -> None:
    path = {"sandbox_url": "/_sandbox/health", "outbox_url": "/api/messages",
            "moto_url": "/moto-api/"}[server]
    results = _burst(getattr(stack, server), path)
    assert raised(results) == [], {type(e).__name__ for e in raised(results)}
    assert set(results) == {200}
