"""Members in DynamoDB: consistent reads, version-conditioned writes staged in the unit of work."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.mapping import (
    absent,
    entity_from_item,
    item_from_entity,
    unchanged_since_read,
)
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.members import Member
from chalicelib.services.repositories import MemberRepository


def member_label(document_number: str) -> str:
    return f"member:{document_number}"


def member_from_item(item: models.Member) -> Member:
    return entity_from_item(Member, item)


class DynamoMembers(MemberRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, document_number: str) -> Member | None:
        try:
            return member_from_item(models.Member.get(document_number, consistent_read=True))
        except DoesNotExist:
            return None

    def add(self, member: Member) -> None:
        self.stage(member, absent(models.Member))

    def update(self, member: Member) -> None:
        self.stage(member, unchanged_since_read(models.Member, member.version))

    def stage(self, member: Member, condition: object) -> None:
        item = item_from_entity(models.Member, member)
        self.tx.put(member_label(member.document_number), item, condition)  # type: ignore[arg-type]
        self.tx.after_commit(lambda: setattr(member, "version", item.version))
