"""One ``TransactWriteItems`` in the making, whose actions carry labels.

A cancellation becomes a domain :class:`Conflict` naming the labels whose condition did not hold
(a replayed event, a lost status race, an obligation changed by an import...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo.repositories import aws_error_code, connection
from chalicelib.domain.errors import Conflict


class Cancelled(Conflict):
    """A transaction was cancelled; ``changed`` names the labels whose condition failed."""


@dataclass
class Tx:
    """Puts, updates and deletes, each with an optional condition, written all or none."""

    puts: list[tuple[str, Model, Condition | None]] = field(default_factory=list)
    updates: list[tuple[str, Model, list[Action], Condition | None]] = field(default_factory=list)
    deletes: list[tuple[str, Model, Condition | None]] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)

    def put(self, label: str, item: Model, condition: Condition | None = None) -> Tx:
        self.puts.append((label, item, condition))
        return self

    def update(self, label: str, item: Model, actions: list[Action],
               condition: Condition | None = None) -> Tx:
        self.updates.append((label, item, actions, condition))
        return self

    def delete(self, label: str, item: Model, condition: Condition | None = None) -> Tx:
        self.deletes.append((label, item, condition))
        return self

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the write succeeded (e.g. a domain object takes its new version)."""
        self.committed.append(callback)

    def clear(self) -> None:
        for staged in (self.puts, self.updates, self.deletes, self.committed):
            staged.clear()

    def __len__(self) -> int:
        return len(self.puts) + len(self.updates) + len(self.deletes)

    def commit(self) -> None:
        """One round trip (none when empty); raises :class:`Cancelled` on a failed condition."""
        if not self:
            return
        # PynamoDB sends deletes, then puts, then updates: the cancellation reasons come in that order.
        labels = ([label for label, _, _ in self.deletes] + [label for label, _, _ in self.puts]
                  + [label for label, *_ in self.updates])
        try:
            with TransactWrite(connection=connection()) as tx:
                for _, item, condition in self.deletes:
                    tx.delete(item, condition=condition)
                for _, item, condition in self.puts:
                    tx.save(item, condition=condition)
                for _, item, actions, condition in self.updates:
                    tx.update(item, actions=actions, condition=condition)
        except TransactWriteError as exc:
            if aws_error_code(exc) != "TransactionCanceledException":
                raise
            # One reason per item, in order (a mismatch would blame the wrong item: fail loudly).
            failed = {label for label, reason in zip(labels, exc.cancellation_reasons, strict=True)
                      if reason is not None and reason.code not in (None, "None")}
            raise Cancelled(str(exc), changed=failed) from exc
        for callback in self.committed:
            callback()
