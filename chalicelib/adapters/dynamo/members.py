"""Members in DynamoDB: consistent reads, version-conditioned writes staged in the unit of work."""

from __future__ import annotations

import copy

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.mapping import (
    absent,
    changed_attributes,
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
    """An update of a member read here writes only the attributes that changed: writers that do
    not keep the version yet (an import, a staff block) lose nothing they changed meanwhile."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.as_read: dict[str, Member] = {}

    def get(self, document_number: str) -> Member | None:
        try:
            member = member_from_item(models.Member.get(document_number, consistent_read=True))
        except DoesNotExist:
            return None
        self.as_read[document_number] = copy.deepcopy(member)
        return member

    def add(self, member: Member) -> None:
        self.stage(member, absent(models.Member))

    def update(self, member: Member) -> None:
        condition = unchanged_since_read(models.Member, member.version)
        before = self.as_read.get(member.document_number)
        if before is None or before.version != member.version:
            self.stage(member, condition)
            return
        version = member.version + 1
        self.tx.update(member_label(member.document_number),
                       models.Member(document_number=member.document_number),
                       [*changed_attributes(models.Member, before, member),
                        models.Member.version.set(version)], condition)
        self.tx.after_commit(lambda: setattr(member, "version", version))

    def stage(self, member: Member, condition: object) -> None:
        item = item_from_entity(models.Member, member)
        self.tx.put(member_label(member.document_number), item, condition)  # type: ignore[arg-type]
        self.tx.after_commit(lambda: setattr(member, "version", item.version))
