"""Domain objects to PynamoDB items and back, field by field (the names are the same)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

from pynamodb.attributes import Attribute, AttributeContainer, MapAttribute, NumberAttribute
from pynamodb.expressions.condition import And, Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.adapters.dynamo import models
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import Payment, PaymentItem, StatusChange

E = TypeVar("E")
M = TypeVar("M", bound=Model)


def plain(value: Any) -> Any:
    """A PynamoDB value as plain Python (maps as dicts, lists element by element)."""
    if isinstance(value, MapAttribute):
        return {k: plain(v) for k, v in value.attribute_values.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def entity_from_item(cls: type[E], item: AttributeContainer, **overrides: Any) -> E:
    """``cls`` (a dataclass) from the item's attributes of the same names; an absent version is 0."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif hasattr(item, f.name):
            values[f.name] = plain(getattr(item, f.name))
    if "version" in values and values["version"] is None:
        values["version"] = 0
    return cls(**values)


def item_from_entity(model: type[M], entity: object, **overrides: Any) -> M:
    """The item of ``entity`` (a dataclass) with its next version, ready to be put."""
    values = {f.name: getattr(entity, f.name) for f in fields(entity)}  # type: ignore[arg-type]
    values.update(overrides)
    if "version" in values:
        values["version"] = int(values["version"]) + 1
    return model(**{k: v for k, v in values.items() if v is not None})


def changed_attributes(model: type[Model], before: object, after: object) -> list[Action]:
    """SET or REMOVE each attribute whose field differs between two states of one entity (the
    version aside): an update that leaves what it did not change to other writers."""
    attributes = model.get_attributes()
    actions: list[Action] = []
    for f in fields(after):  # type: ignore[arg-type]
        new = getattr(after, f.name)
        if f.name == "version" or new == getattr(before, f.name):
            continue
        attribute = attributes[f.name]
        actions.append(attribute.remove() if new is None else attribute.set(new))
    return actions


def hash_key(model: type[Model]) -> Attribute[Any]:
    return next(a for a in model.get_attributes().values() if a.is_hash_key)


def unchanged_since_read(model: type[Model], version: int) -> Condition:
    """The stored item is still the one read at ``version`` (0: stored before versions existed)."""
    stored_version: NumberAttribute = model.get_attributes()["version"]  # type: ignore[assignment]
    if version == 0:
        return And(hash_key(model).exists(), stored_version.does_not_exist())  # `&` is untyped
    return stored_version == version


def absent(model: type[Model]) -> Condition:
    """No item with this key exists yet."""
    return hash_key(model).does_not_exist()


# --- the payment engine's entities ---------------------------------------------------------------

def payment_from_item(item: models.Payment) -> Payment:
    return entity_from_item(
        Payment, item,
        items=[entity_from_item(PaymentItem, line) for line in item.items],
        status_history=[StatusChange(status=c.status, at=c.at) for c in item.status_history or []],
    )


def payment_to_item(payment: Payment) -> models.Payment:
    """The item to put, at the payment's next version."""
    return item_from_entity(
        models.Payment, payment,
        items=[models.PaymentItem(**{k: v for k, v in asdict(line).items() if v is not None})
               for line in payment.items],
        status_history=[models.StatusChange(status=c.status, at=c.at) for c in payment.status_history],
    )


def obligation_from_item(item: models.Obligation) -> Obligation:
    return entity_from_item(Obligation, item)


def obligation_to_item(obligation: Obligation) -> models.Obligation:
    """The item to put, at the obligation's next version."""
    return item_from_entity(models.Obligation, obligation)
