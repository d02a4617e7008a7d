"""The run's members and obligations, written in the import format of SPEC §4, dated from today."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

MEMBER_COLUMNS = ("document_type", "document_number", "full_name", "email", "phone", "status")
OBLIGATION_COLUMNS = ("document_number", "obligation_id", "type", "product_number", "description",
                      "due_date", "amount_due", "minimum_amount", "maximum_amount", "cutoff")
#: Each member's obligations: (type, id prefix, description, days from today, due, minimum,
#: maximum). Large maximums so a member can pay several times in one run.
OBLIGATIONS = (
    ("CREDITO", "CRE", "Crédito de libre inversión, cuota 7 de 36", -8, 420_000, 420_000, 9_800_000),
    ("APORTE", "APO", "Aportes sociales del mes", 3, 85_000, 85_000, 85_000),
    ("AHORRO", "AHO", "Ahorro programado navideño", 30, 150_000, 50_000, 3_000_000),
    ("CONVENIO", "CON", "Seguro exequial", 12, 38_000, 38_000, 456_000),
)


@dataclass(frozen=True)
class LoadMember:
    document_number: str
    email: str
    ip: str  # the address it "comes from" (X-Forwarded-For, trusted in the local stage)


@dataclass(frozen=True)
class StartingBalance:
    amount_due: int
    minimum_amount: int
    maximum_amount: int


def load_members(count: int, tag: int) -> list[LoadMember]:
    """``count`` members; ``tag`` (0-999) keeps the document numbers of different runs apart."""
    return [LoadMember(document_number=f"7{tag % 1000:03d}{index:06d}",
                       email=f"carga.{tag % 1000:03d}.{index:06d}@correo.example",
                       ip=f"10.{100 + index // 65536}.{index // 256 % 256}.{index % 256}")
            for index in range(count)]


def obligation_id(member: LoadMember, prefix: str) -> str:
    return f"{prefix}-{member.document_number}"


def starting_balances(members: list[LoadMember]) -> dict[tuple[str, str], StartingBalance]:
    """What the files load: ``(document_number, obligation_id)`` to its balances."""
    return {(m.document_number, obligation_id(m, prefix)): StartingBalance(due, minimum, maximum)
            for m in members for _, prefix, _, _, due, minimum, maximum in OBLIGATIONS}


def write_files(members: list[LoadMember], folder: Path, *, today: date, now: datetime) -> Path:
    """``members.csv`` and ``obligations.csv`` in ``folder``; due dates relative to ``today``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "members.csv").open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(MEMBER_COLUMNS)
        for index, m in enumerate(members):
            writer.writerow(("CC", m.document_number, f"Asociado de Carga {index:06d}", m.email,
                             f"300{index:07d}", "ACTIVO"))
    cutoff = (now - timedelta(minutes=5)).isoformat(timespec="seconds")
    with (folder / "obligations.csv").open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(OBLIGATION_COLUMNS)
        for m in members:
            for kind, prefix, description, days, due, minimum, maximum in OBLIGATIONS:
                writer.writerow((m.document_number, obligation_id(m, prefix), kind,
                                 f"{prefix}{m.document_number}", description,
                                 (today + timedelta(days=days)).isoformat(), due, minimum, maximum,
                                 cutoff))
    return folder
