"""Members' identity documents and statuses."""

from __future__ import annotations

import re

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
