"""``members.csv``: members upserted in bounded batches (SPEC §4).

A member's password and security fields are never written here: new members have none (their
first access is the recovery flow), existing ones get only the core system's fields
(:meth:`ImportStorage.update_member_core_fields`). Memory: one batch, and a small digest per
document to name repeated rows (about 100 bytes per row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from chalicelib.context import Context, get_context
from chalicelib.domain import text
from chalicelib.domain.imports import key_digest
from chalicelib.domain.members import DOCUMENT_TYPES, MEMBER_STATUSES, Member
from chalicelib.services.imports import limits
from chalicelib.services.imports.report import ImportReport, log_finished, new_batch_id, record_run
from chalicelib.services.imports.rows import (
    FileError,
    Progress,
    Row,
    document_number,
    free_text,
    one_of,
    read_rows,
)
from chalicelib.services.repositories import ImportStorage

MEMBER_COLUMNS = ("document_type", "document_number", "full_name", "email", "phone", "status")
MEMBER_REQUIRED = ("document_type", "document_number", "full_name", "email", "status")

EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
PHONE = re.compile(r"[0-9+() -]{7,20}")


@dataclass
class MemberRow:
    line: int
    document_number: str
    document_type: str
    full_name: str
    email: str | None
    phone: str | None
    status: str

    def same_as(self, member: Member) -> bool:
        return (member.document_type, member.full_name, member.email, member.phone,
                member.status) == (self.document_type, self.full_name, self.email, self.phone,
                                   self.status)

    def as_member(self, now: datetime) -> Member:
        """A new member: no password, the first access is the recovery flow."""
        return Member(self.document_number, document_type=self.document_type,
                      full_name=self.full_name, email=self.email, phone=self.phone,
                      status=self.status, imported_at=now, updated_at=now)


def parse_member(row: Row, report: ImportReport) -> MemberRow | None:
    values, problems = row.values, list[str]()
    document_type = one_of(values, "document_type", DOCUMENT_TYPES, problems)
    number = document_number(values, problems)
    full_name = free_text(values, "full_name", 200, problems, required=True)
    status = one_of(values, "status", MEMBER_STATUSES, problems)
    if problems:
        report.reject(row.line, "; ".join(problems))
        return None
    email: str | None = values.get("email", "")
    if not email:
        report.warn(row.line, f"el asociado {number} no tiene correo electrónico: no podrá "
                              "recuperar su contraseña")
        email = None
    elif len(email) > 254 or not EMAIL.fullmatch(email):
        report.warn(row.line, f"email '{text.shown(email)}' no es una dirección válida: el "
                              f"asociado {number} queda sin correo y no podrá recuperar su "
                              "contraseña")
        email = None
    phone: str | None = values.get("phone", "") or None
    if phone is not None and not PHONE.fullmatch(phone):
        report.warn(row.line, f"phone '{text.shown(phone)}' no es un teléfono válido; se omite")
        phone = None
    return MemberRow(row.line, number, document_type, full_name, email, phone, status)


def write_members(storage: ImportStorage, batch: list[MemberRow], report: ImportReport,
                  now: datetime) -> None:
    stored = storage.members([r.document_number for r in batch])
    new: list[Member] = []
    for row in batch:
        member = stored.get(row.document_number)
        if member is None:
            new.append(row.as_member(now))
            report.inserted += 1
        elif row.same_as(member):
            report.unchanged += 1
        else:
            member.document_type, member.full_name, member.email, member.phone, member.status = (
                row.document_type, row.full_name, row.email, row.phone, row.status)
            storage.update_member_core_fields(member, now)
            report.updated += 1
    storage.add_members(new)


def import_members(stream: BinaryIO, *, now: datetime, progress: Progress | None = None,
                   source: str | None = None, ctx: Context | None = None) -> ImportReport:
    """Upsert the members of a ``members.csv`` stream; see the module docstring."""
    ctx = ctx or get_context()
    report = ImportReport("members", batch_id=new_batch_id(now), source=source)
    started = ctx.monotonic()
    with ctx.unit_of_work() as uow:
        try:
            read_members(uow.imports, stream, report, now, progress)
        finally:
            record_run(uow.imports, report, now, ctx.monotonic() - started)
    log_finished(report)
    return report.finish()


def read_members(storage: ImportStorage, stream: BinaryIO, report: ImportReport, now: datetime,
                 progress: Progress | None) -> None:
    seen: dict[int, int] = {}
    batch: list[MemberRow] = []
    try:
        for row in read_rows(stream, report, MEMBER_COLUMNS, MEMBER_REQUIRED, progress):
            member = parse_member(row, report)
            if member is None:
                continue
            digest = key_digest(member.document_number)
            if digest in seen:
                report.reject(row.line, f"el documento {member.document_number} ya apareció en la "
                                        f"línea {seen[digest]}; se rechaza la repetición")
                continue
            seen[digest] = row.line
            batch.append(member)
            if len(batch) >= limits.BATCH_SIZE:
                write_members(storage, batch, report, now)
                batch = []
    except FileError as exc:
        report.file_error = str(exc)
    if batch:
        write_members(storage, batch, report, now)

