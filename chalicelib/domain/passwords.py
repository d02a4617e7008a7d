"""The password policy (NIST SP 800-63B, OWASP ASVS 2.1): length and a blocklist, no composition rules."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from chalicelib.domain.errors import DomainError

MIN_LENGTH = 12
MAX_LENGTH = 128
HISTORY_SIZE = 5


class WeakPassword(DomainError):
    status = 400
    code = "weak_password"


def normalize(password: str) -> str:
    """NFKC, as NIST asks, so the same password typed on two keyboards hashes alike."""
    return unicodedata.normalize("NFKC", password)


def _fold(text: str) -> str:
    """Lower case without accents or spaces, to compare against context words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and not c.isspace())


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("chalicelib.domain").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy; ``context_words`` are the cooperative's names."""

    context_words: tuple[str, ...] = ()

    def violations(self, password: str, *, document_number: str) -> list[str]:
        """Every rule the password breaks, as sentences a member can act on (empty when valid)."""
        pw = normalize(password)
        problems: list[str] = []
        length = len(pw)
        if length < MIN_LENGTH:
            problems.append(f"Debe tener al menos {MIN_LENGTH} caracteres (tiene {length}).")
        if length > MAX_LENGTH:
            problems.append(f"Debe tener como máximo {MAX_LENGTH} caracteres (tiene {length}).")
        if pw.casefold() in common_passwords() or pw.strip().casefold() in common_passwords():
            problems.append("Es una contraseña común, fácil de adivinar. Elija otra.")
        folded = _fold(pw)
        if document_number and document_number in folded:
            problems.append("No puede contener su número de documento.")
        for word in self.context_words:
            if word and _fold(word) in folded:
                problems.append("No puede contener el nombre de la cooperativa.")
                break
        return problems

    def check(self, password: str, *, document_number: str) -> str:
        """The normalized password, or :class:`WeakPassword` with the reasons."""
        if not isinstance(password, str) or not password:
            raise WeakPassword("Ingrese la nueva contraseña.", field="new_password")
        problems = self.violations(password, document_number=document_number)
        if problems:
            raise WeakPassword(
                "La contraseña no cumple la política: " + " ".join(problems),
                field="new_password",
                extra={"reasons": problems},
            )
        return normalize(password)


def policy_summary(cooperative_name: str) -> list[str]:
    """The policy as stated to members (recovery email, change-password page)."""
    return [
        f"Entre {MIN_LENGTH} y {MAX_LENGTH} caracteres; puede usar espacios, tildes y cualquier símbolo.",
        "Una frase fácil de recordar es una buena contraseña, por ejemplo cuatro palabras al azar.",
        "No puede ser una contraseña común ni contener su número de documento "
        f"ni el nombre de {cooperative_name}.",
        f"No puede repetir ninguna de sus últimas {HISTORY_SIZE} contraseñas.",
        "No le pediremos cambiarla periódicamente: cámbiela solo si sospecha que alguien la conoce.",
    ]


def context_words(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(n for n in names if n and len(_fold(n)) >= 4)
