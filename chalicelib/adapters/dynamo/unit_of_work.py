"""The unit of work on DynamoDB: reads at once, every staged write and event in one
``TransactWriteItems`` (:class:`~chalicelib.adapters.dynamo.transaction.Tx`)."""

from __future__ import annotations

from chalicelib.adapters.dynamo.audit import DynamoAuditLog
from chalicelib.adapters.dynamo.imports import DynamoImportStorage
from chalicelib.adapters.dynamo.members import DynamoMembers
from chalicelib.adapters.dynamo.outbox import outbox_item
from chalicelib.adapters.dynamo.sessions import DynamoRateCounters, DynamoRecoveries, DynamoSessions
from chalicelib.adapters.dynamo.staff_repo import DynamoStaffSessions
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.services.unit_of_work import UnitOfWork


class DynamoUnitOfWork(UnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.tx = Tx()
        self.members = DynamoMembers(self.tx)
        self.audit = DynamoAuditLog(self.tx)
        # --- imports ---
        self.imports = DynamoImportStorage()
        # access
        self.sessions = DynamoSessions(self.tx)
        self.recoveries = DynamoRecoveries(self.tx)
        self.rate_counters = DynamoRateCounters()
        self.staff_sessions = DynamoStaffSessions(self.tx)

    def commit(self) -> None:
        for event in self.events:
            self.tx.put("event", outbox_item(event))
        try:
            self.tx.commit()
        finally:
            self.rollback()

    def rollback(self) -> None:
        """Empty the transaction in place: the repositories hold the same :class:`Tx` object."""
        self.events = []
        self.tx.clear()
