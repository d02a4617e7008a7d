"""The imports' storage in DynamoDB (:class:`~chalicelib.services.repositories.ImportStorage`).

Built for 100,000-row files: new items go out as ``BatchWriteItem`` of DynamoDB JSON built by
hand (no model instance per row: that was most of an import's CPU time and allocations), the
member check reads keys only, updates are ``UpdateItem`` without returning the item. Versions:
new items are written at version 1; every update adds 1 to the stored version (``ADD``, an
absent version counting as 0), so the payment engine's version-checked writes notice the import.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.audit import audit_item
from chalicelib.adapters.dynamo.mapping import obligation_from_item
from chalicelib.adapters.dynamo.members import member_from_item
from chalicelib.adapters.dynamo.repositories import aws_error_code
from chalicelib.adapters.dynamo.transaction import Cancelled, Tx
from chalicelib.context import Runtime
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.imports import OPEN_SHARDS
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.services.repositories import ImportLease, ImportRunRecord, ImportStorage

BATCH_GET_KEYS = 100  # BatchGetItem takes at most 100 keys
BATCH_WRITE_ITEMS = 25  # BatchWriteItem at most 25
INDEX_PAGE = 100

Key = tuple[str, str]


def _is_condition_failure(exc: Exception) -> bool:
    return aws_error_code(exc) == "ConditionalCheckFailedException"


def _names(model: type[Model]) -> dict[str, str]:
    """Attribute name → its name in DynamoDB (the same unless the model says otherwise)."""
    return {name: attr.attr_name for name, attr in model.get_attributes().items()}


_MEMBER = _names(models.Member)
_OBLIGATION = _names(models.Obligation)


def _attribute(model: type[Model], name: str) -> Attribute[Any]:
    attribute: Attribute[Any] = model.get_attributes()[name]
    return attribute


def _serialized(model: type[Model], name: str, value: Any) -> dict[str, Any]:
    """One attribute as DynamoDB JSON (``{"S": ...}``, ``{"N": ...}``...)."""
    attribute = _attribute(model, name)
    return {attribute.attr_type: attribute.serialize(value)}


def _set(model: type[Model], name: str, value: Any) -> Action:
    attribute = _attribute(model, name)
    return attribute.remove() if value is None else attribute.set(value)


def _next_version(model: type[Model]) -> Action:
    return _attribute(model, "version").add(1)


def _member_json(member: Member) -> dict[str, dict[str, Any]]:
    """A new member's core-system fields as DynamoDB JSON, at its next version."""
    item = {_MEMBER[name]: _serialized(models.Member, name, value) for name in _MEMBER_FIELDS
            if (value := getattr(member, name)) is not None}
    item[_MEMBER["version"]] = {"N": str(member.version + 1)}
    return item


_RARELY_NEW = ("instalment_parts", "opened_on", "pending_payment_id", "pending_reference",
               "portal_payments", "closed_at")
_MEMBER_FIELDS = ("document_number", "document_type", "full_name", "email", "phone", "status",
                  "imported_at", "updated_at")


class DynamoImportStorage(ImportStorage):
    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The low-level botocore client (batch calls of DynamoDB JSON, without models)."""
        if self._client is None:
            self._client = models.Obligation._get_connection().connection.client
        return self._client

    # --- batches ---------------------------------------------------------------------------------

    def _batch_get(self, table: str, keys: list[dict[str, Any]],
                   extra: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Consistent ``BatchGetItem``s, 100 keys a call, unprocessed keys retried with backoff."""
        for start in range(0, len(keys), BATCH_GET_KEYS):
            request: dict[str, Any] = {table: {"Keys": keys[start:start + BATCH_GET_KEYS],
                                               "ConsistentRead": True, **(extra or {})}}
            delay = 0.05
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                yield from answer.get("Responses", {}).get(table, [])
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    Runtime.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def _batch_put(self, table: str, items: list[dict[str, dict[str, Any]]]) -> None:
        """``BatchWriteItem`` of serialized items, 25 a call, unprocessed ones retried."""
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in
                                               items[start:start + BATCH_WRITE_ITEMS]]}
            delay = 0.05
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get(
                    "UnprocessedItems") or {}
                if pending:
                    Runtime.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def _update(self, model: type[Model], key: tuple[str, ...], actions: list[Action],
                condition: Condition) -> bool:
        """``UpdateItem`` without returning the item (``Model.update`` asks for ALL_NEW), the
        version incremented; False when the condition failed."""
        try:
            model._get_connection().update_item(key[0], key[1] if len(key) > 1 else None,
                                                actions=[*actions, _next_version(model)],
                                                condition=condition)
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    # --- members ---------------------------------------------------------------------------------

    def members(self, documents: list[str]) -> dict[str, Member]:
        return {m.document_number: member_from_item(m) for m in
                models.Member.batch_get(documents, consistent_read=True)}

    def existing_members(self, documents: list[str]) -> set[str]:
        name = _MEMBER["document_number"]
        found = self._batch_get(models.Member.Meta.table_name, [{name: {"S": d}} for d in documents],
                                {"ProjectionExpression": "#k", "ExpressionAttributeNames": {"#k": name}})
        return {item[name]["S"] for item in found}

    def add_members(self, members: list[Member]) -> None:
        self._batch_put(models.Member.Meta.table_name,
                        [_member_json(m) for m in members])

    def update_member_core_fields(self, member: Member, now: datetime) -> bool:
        m = models.Member
        actions = [_set(m, name, getattr(member, name)) for name in
                   ("document_type", "full_name", "email", "phone", "status")]
        actions += [m.imported_at.set(now), m.updated_at.set(now)]
        return self._update(m, (member.document_number,), actions, m.document_number.exists())

    # --- obligations -----------------------------------------------------------------------------

    def obligations(self, keys: list[Key]) -> dict[Key, Obligation]:
        return {(o.document_number, o.obligation_id): obligation_from_item(o) for o in
                models.Obligation.batch_get(keys, consistent_read=True)}

    def obligation(self, document_number: str, obligation_id: str) -> Obligation | None:
        try:
            return obligation_from_item(models.Obligation.get(document_number, obligation_id,
                                                              consistent_read=True))
        except DoesNotExist:
            return None

    def add_obligations(self, obligations: list[Obligation]) -> None:
        self._batch_put(models.Obligation.Meta.table_name, [_obligation_json(o) for o in obligations])

    def stamp(self, key: Key, *, batch_id: str, line: int) -> bool:
        o = models.Obligation
        return self._update(o, key, [o.import_batch.set(batch_id), o.import_line.set(line)],
                            o.document_number.exists())

    def update_obligation(self, key: Key, changes: dict[str, Any], *,
                          portal_payments_read: dict[str, Any], kept: dict[str, Any],
                          reopen: bool, batch_id: str, line: int, now: datetime) -> bool:
        o = models.Obligation
        actions = [_set(o, name, value) for name, value in changes.items()]
        actions += [o.updated_at.set(now), o.import_batch.set(batch_id), o.import_line.set(line)]
        if reopen:
            actions.append(o.closed_at.remove())
        if len(kept) != len(portal_payments_read):
            actions.append(o.portal_payments.set(kept) if kept else o.portal_payments.remove())
        return self._update(o, key, actions, _same_payments(portal_payments_read))

    def open_obligations_of_other_imports(self, batch_id: str) -> Iterator[Key]:
        o = models.Obligation
        for shard in range(OPEN_SHARDS):
            for condition in (o.import_batch < batch_id, o.import_batch > batch_id):
                for item in o.open_by_import.query(str(shard), condition, page_size=INDEX_PAGE):
                    yield item.document_number, item.obligation_id

    def close(self, key: Key, *, batch_id: str, now: datetime) -> bool:
        o = models.Obligation
        return self._update(o, key, [o.status.set("CLOSED"), o.closed_at.set(now),
                                     o.updated_at.set(now), o.open_shard.remove()],
                            (o.status == "OPEN") & o.import_batch.exists()
                            & (o.import_batch != batch_id) & o.pending_payment_id.does_not_exist())

    # --- payments --------------------------------------------------------------------------------

    def export_times(self, payment_ids: list[str]) -> dict[str, datetime | None]:
        return {p.payment_id: p.exported_at for p in models.Payment.batch_get(
            payment_ids, consistent_read=True, attributes_to_get=["payment_id", "exported_at"])}

    def confirm_applied_in_core(self, payment_id: str, *, cutoff: datetime, at: datetime,
                                entry: AuditEntry) -> bool:
        p = models.Payment
        tx = Tx()
        tx.update("payment", p(payment_id=payment_id), [p.core_applied_at.set(at)],
                  p.exported_at.exists() & (p.exported_at <= cutoff)
                  & p.core_applied_at.does_not_exist())
        tx.put("audit", audit_item(entry))
        try:
            tx.commit()
        except Cancelled:
            return False
        return True

    # --- the lock and the runs -------------------------------------------------------------------

    def acquire_lock(self, lock_id: str, *, holder: str, kind: str, source: str | None,
                     now: datetime, lease_until: datetime) -> ImportLease | None:
        run = models.ImportRun
        lock = run(lock_id, kind=kind, source=source, started_at=now, holder=holder,
                   lease_until=lease_until)
        try:
            lock.save(condition=run.run_id.does_not_exist() | (run.lease_until < now))
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
            try:
                held = run.get(lock_id, consistent_read=True)
            except DoesNotExist:  # released meanwhile
                return ImportLease(None, None)
            return ImportLease(held.holder, held.lease_until)
        return None

    def renew_lock(self, lock_id: str, *, holder: str, lease_until: datetime) -> bool:
        run = models.ImportRun
        try:
            run(lock_id).update(actions=[run.lease_until.set(lease_until)],
                                condition=run.holder == holder)
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    def release_lock(self, lock_id: str, *, holder: str) -> None:
        run = models.ImportRun
        try:
            run(lock_id).delete(condition=run.holder == holder)
        except DeleteError as exc:
            if not _is_condition_failure(exc):
                raise

    def record_run(self, record: ImportRunRecord) -> None:
        models.ImportRun(record.batch_id, kind=record.kind, source=record.source,
                         started_at=record.started_at, finished_at=record.finished_at,
                         summary=record.summary).save()


def _obligation_json(obligation: Obligation) -> dict[str, dict[str, Any]]:
    """A new obligation as DynamoDB JSON, at its next version, built by hand (see the module)."""
    names, o = _OBLIGATION, obligation
    item: dict[str, dict[str, Any]] = {
        names["document_number"]: {"S": o.document_number},
        names["obligation_id"]: {"S": o.obligation_id},
        names["type"]: {"S": o.type},
        names["product_number"]: {"S": o.product_number},
        names["description"]: {"S": o.description},
        names["due_date"]: {"S": o.due_date},
        names["amount_due"]: {"N": str(o.amount_due)},
        names["minimum_amount"]: {"N": str(o.minimum_amount)},
        names["maximum_amount"]: {"N": str(o.maximum_amount)},
        names["cutoff"]: {"S": _utc_text(o.cutoff)},
        names["status"]: {"S": o.status},
        names["version"]: {"N": str(o.version + 1)},
    }
    for name in ("import_batch", "open_shard"):
        if (text := getattr(o, name)) is not None:
            item[names[name]] = {"S": text}
    if o.updated_at is not None:
        item[names["updated_at"]] = {"S": _utc_text(o.updated_at)}
    if o.import_line is not None:
        item[names["import_line"]] = {"N": str(o.import_line)}
    for name in _RARELY_NEW:  # a new row has none of them
        if (value := getattr(o, name)) is not None:
            item[names[name]] = _serialized(models.Obligation, name, value)
    return item


_UTC_TEXTS: dict[datetime, str] = {}


def _utc_text(moment: datetime) -> str:
    """``UTCDateTimeAttribute``'s text, remembered: a file has one ``now`` and a few cut-offs."""
    text = _UTC_TEXTS.get(moment)
    if text is None:
        if len(_UTC_TEXTS) > 1024:
            _UTC_TEXTS.clear()
        text = _UTC_TEXTS[moment] = models.Obligation.updated_at.serialize(moment)
    return text


def _same_payments(payments: dict[str, Any]) -> Condition:
    """The item exists and still has exactly the portal payments that were read (by id)."""
    o = models.Obligation
    condition: Condition = o.document_number.exists()
    stored_size = size(o.portal_payments)
    if not payments:
        empty: Condition = o.portal_payments.does_not_exist() | (stored_size == 0)
        condition = condition & empty
        return condition
    # exists() first: moto cannot take size() of a missing attribute (DynamoDB says false).
    as_read: Condition = stored_size == len(payments)
    condition = condition & o.portal_payments.exists() & as_read
    for payment_id in payments:
        listed: Condition = o.portal_payments[payment_id].exists()
        condition = condition & listed
    return condition

