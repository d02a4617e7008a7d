"""Members' identity documents and statuses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.errors import InvalidInput

DOCUMENT_TYPES = ("CC", "CE", "TI", "PP", "NIT")
MEMBER_STATUSES = ("ACTIVO", "INACTIVO", "BLOQUEADO")
_DOCUMENT = re.compile(r"[0-9]{5,15}")


def parse_document_number(raw: object) -> str:
    """A document number as members type it: digits only, 5 to 15 of them (spaces and dots ignored)."""
    if not isinstance(raw, str):
        raise InvalidInput("Ingrese su número de documento.", field="document_number")
    cleaned = raw.strip().replace(".", "").replace(" ", "")
    if not cleaned:
        raise InvalidInput("Ingrese su número de documento.", field="document_number")
    if not _DOCUMENT.fullmatch(cleaned):
        raise InvalidInput(
            "El número de documento debe tener solo dígitos, entre 5 y 15.", field="document_number"
        )
    return cleaned


def mask_document(document_number: str, *, for_people: bool = False) -> str:
    """A document number with all but its last digits hidden: the one rule, for logs and pages.

    In logs (the default) the last 3 digits survive and the length shows (``*******050``), enough to
    tell two members' lines apart. Where a person reads it (a receipt seen without a session, the
    reminders' unsubscribe page) the last 4 follow a fixed mark, as product numbers are masked
    (``•••• 4050``), and a number of 4 digits or fewer is hidden whole (``••••``).
    """
    number = document_number.strip()
    if for_people:
        return f"•••• {number[-4:]}" if len(number) > 4 else "••••"
    if len(number) <= 3:
        return "*" * len(number)
    return "*" * (len(number) - 3) + number[-3:]


def mask_email(email: str | None) -> str:
    """``maria@correo.example`` → ``ma***@correo.example``: enough to recognise one's own."""
    if not email or "@" not in email:
        return ""
    local, domain = email.split("@", 1)
    return f"{local[:2]}{'*' * max(1, len(local) - 2)}@{domain}"


@dataclass
class Member:
    """A member of the cooperative as the core system loads them; the password is the member's own.

    ``version`` counts the member's stored writes: a write is accepted only over the version it
    was read at (the unit of work checks it), so two logins or a login and an import never lose
    each other's changes.
    """

    document_number: str
    full_name: str
    document_type: str = "CC"
    email: str | None = None
    phone: str | None = None
    status: str = "ACTIVO"  # ACTIVO | INACTIVO | BLOQUEADO (core system)
    portal_blocked: bool = False  # blocked by staff in the portal
    password_hash: str | None = None
    password_history: list[str] | None = None  # previous hashes, newest first
    password_changed_at: datetime | None = None
    failed_consecutive: int = 0
    locked_until: datetime | None = None
    failure_window_start: datetime | None = None
    failure_window_count: int = 0
    last_login_at: datetime | None = None
    last_login_ip: str | None = None
    previous_login_at: datetime | None = None
    previous_login_ip: str | None = None
    terms_version: str | None = None
    terms_accepted_at: datetime | None = None
    terms_accepted_ip: str | None = None
    active_recovery: str | None = None  # hash of the newest recovery token
    imported_at: datetime | None = None
    updated_at: datetime | None = None
    preferred_bank_code: str | None = None  # the last bank and person type paid with
    preferred_person_type: str | None = None
    reminders_opt_out: bool = False
    reminders_opt_out_at: datetime | None = None
    version: int = 0
