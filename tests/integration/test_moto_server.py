"""The serialized moto server keeps DynamoDB's per-item atomic conditional writes (SPEC §8)."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devtools.moto_server import MotoServerHandle, start_moto_server
from tests.conftest import concurrently, raised

THREADS = 20
ROUNDS = 20


@pytest.fixture
def server() -> Iterator[MotoServerHandle]:
    handle = start_moto_server(0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def dynamodb(server: MotoServerHandle):  # type: ignore[no-untyped-def]
    client = boto3.client("dynamodb", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local",
                          config=Config(max_pool_connections=THREADS + 5,
                                        retries={"max_attempts": 1}))
    table = f"race-{uuid.uuid4().hex[:8]}"  # moto's state is shared by the whole process
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return client, table


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make the interpreter switch threads very often, as in stack.md's experiments."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _race(threads: int, work: Callable[[int], None]) -> None:
    results = concurrently(work, threads)
    assert not raised(results), raised(results)


def _conditional_put_race(client, table: str, key: str) -> list[int]:  # type: ignore[no-untyped-def]
    """THREADS conditional puts of ``key`` at once; the indexes of the threads whose put succeeded."""
    winners: list[int] = []
    lock = threading.Lock()

    def put(index: int) -> None:
        try:
            client.put_item(TableName=table, Item={"pk": {"S": key}, "winner": {"N": str(index)}},
                            ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return
        with lock:
            winners.append(index)

    _race(THREADS, put)
    return winners


def test_exactly_one_conditional_put_wins(server: MotoServerHandle, dynamodb,  # type: ignore[no-untyped-def]
                                          tiny_switch_interval: None) -> None:
    client, table = dynamodb
    for round_number in range(ROUNDS):
        winners = _conditional_put_race(client, table, f"round-{round_number}")
        assert len(winners) == 1, f"round {round_number}: winners {winners}"
        stored = client.get_item(TableName=table, Key={"pk": {"S": f"round-{round_number}"}},
                                   ConsistentRead=True)["Item"]
        assert stored["winner"]["N"] == str(winners[0])


def test_no_counter_update_is_lost(server: MotoServerHandle, dynamodb,  # type: ignore[no-untyped-def]
                                   tiny_switch_interval: None) -> None:
    client, table = dynamodb

    def add(index: int) -> None:
        for _ in range(10):
            client.update_item(TableName=table, Key={"pk": {"S": "counter"}},
                                 UpdateExpression="ADD hits :one",
                                 ExpressionAttributeValues={":one": {"N": "1"}})

    _race(THREADS, add)
    item = client.get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]
    assert item["hits"]["N"] == str(THREADS * 10)


def test_binds_loopback_only_and_stops(server: MotoServerHandle) -> None:
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    other = start_moto_server(0)
    other.stop()
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", other.port), timeout=1).close()
