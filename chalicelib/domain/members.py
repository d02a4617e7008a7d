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


def mask_document(document_number: str) -> str:
    """For logs: only the last 3 digits survive (``*******123``)."""
    if len(document_number) <= 3:
        return "*" * len(document_number)
    return "*" * (len(document_number) - 3) + document_number[-3:]


def mask_email(email: str | None) -> str:
    """``maria@correo.example`` → ``ma***@correo.example``: enough to recognise one's own."""
    if not email or "@" not in email:
        return ""
    local, domain = email.split("@", 1)
    return f"{local[:2]}{'*' * max(1, len(local) - 2)}@{domain}"
