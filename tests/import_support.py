"""Helpers to measure the obligations importer on big files (tests and ``make bench``).

* :class:`GeneratedCsv`: a binary stream that makes an ``obligations.csv`` (or ``members.csv``)
  of any size as it is read, so the file itself is never in memory;
* :class:`CountingDynamo`: a DynamoDB that knows every member, no obligation, and only counts the
  writes. moto keeps every item it is given (its own memory grows with the file, and its response
  serializer costs milliseconds per returned item), so measuring the importer's memory and its own
  time needs the calls answered without storing them. Everything of the importer runs: reading,
  decoding, validation, batching, PynamoDB's serialization of every request.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

OBLIGATIONS_HEADER = ("document_number;obligation_id;type;product_number;description;due_date;"
                      "amount_due;minimum_amount;maximum_amount;cutoff\n")
MEMBERS_HEADER = "document_type;document_number;full_name;email;phone;status\n"
FIRST_DOCUMENT = 10_000_000
PER_MEMBER = 5
KINDS = ("APORTE", "CREDITO", "AHORRO", "CONVENIO", "CREDITO")


def obligation_lines(rows: int, *, cutoff: str = "2026-11-21T00:00:00-05:00") -> Iterator[str]:
    """``rows`` obligations, :data:`PER_MEMBER` per member, members in document order."""
    yield OBLIGATIONS_HEADER
    for i in range(rows):
        member, n = divmod(i, PER_MEMBER)
        due = 50_000 + (i * 7919) % 900_000
        yield (f"{FIRST_DOCUMENT + member};OB-{member}-{n};{KINDS[n]};03020240{i:08d};"
               f"Cuota {n + 1} de la obligación {i};2026-12-{1 + i % 28:02d};{due};{due // 10};"
               f"{due * 10};{cutoff}\n")


def member_lines(members: int) -> Iterator[str]:
    yield MEMBERS_HEADER
    for m in range(members):
        yield (f"CC;{FIRST_DOCUMENT + m};Asociado Número {m};asociado{m}@correo.example;"
               f"3001234567;ACTIVO\n")


class GeneratedCsv(io.RawIOBase):
    """A read-only binary stream over generated lines (UTF-8); ``size`` counts the bytes read."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._buffer = bytearray()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the importer must read in bounded chunks, never the whole file")
        while len(self._buffer) < size:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer += line.encode("utf-8")
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.size += len(chunk)
        return chunk


class CountingDynamo:
    """Patches botocore's single entry point for DynamoDB (other services pass through).

    Answers: every member asked for exists; no obligation or payment exists (so every row is an
    insert); writes succeed and are counted (``operations``, and ``items_written``)."""

    def __init__(self, members_table: str) -> None:
        self.members_table = members_table
        self.operations: Counter[str] = Counter()
        self.items_written = 0
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> CountingDynamo:
        from botocore.client import BaseClient

        self._original = original = BaseClient._make_api_call
        fake = self

        def answer(client, operation_name, params):  # type: ignore[no-untyped-def]
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, params)
            return fake._answer(operation_name, params)

        BaseClient._make_api_call = answer  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def _answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.operations[operation] += 1
            if operation == "BatchWriteItem":
                self.items_written += sum(len(v) for v in params["RequestItems"].values())
            elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
                self.items_written += 1
        if operation == "BatchGetItem":
            responses = {table: (request["Keys"] if table == self.members_table else [])
                         for table, request in params["RequestItems"].items()}
            return {"Responses": responses, "UnprocessedKeys": {}}
        if operation == "BatchWriteItem":
            return {"UnprocessedItems": {}}
        if operation == "Query":
            return {"Items": [], "Count": 0, "ScannedCount": 0}
        if operation == "UpdateItem":  # a slow run renews the import's lease: ALL_NEW, as DynamoDB
            return {"Attributes": dict(params["Key"])}
        return {}
