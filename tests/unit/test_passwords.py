"""The password policy and hashing, without AWS."""

import pytest

from chalicelib.domain.passwords import (
    MAX_LENGTH,
    PasswordPolicy,
    WeakPassword,
    common_passwords,
    context_words,
)
from chalicelib.security.passwords import PasswordHasher, hash_token

POLICY = PasswordPolicy(
    context_words=context_words(["Coopejemplo", "Cooperativa de Ahorro y Crédito Ejemplo"]))
DOC = "1020304050"


def test_ships_at_least_ten_thousand_common_passwords() -> None:
    assert len(common_passwords()) >= 10_000
    assert "password1234" in common_passwords() or "123456789012" in common_passwords()


@pytest.mark.parametrize("password", [
    "caballo batería grapa correcta",
    "Mi perro se llama Tobías y tiene 7 años",
    "🌶️🌮🌶️🌮🌶️🌮🌶️🌮🌶️🌮🌶️🌮",  # any Unicode
    "x" * 11 + "ñ",
])
def test_accepts_long_passwords_without_composition_rules(password: str) -> None:
    assert POLICY.violations(password, document_number=DOC) == []


def test_refuses_short_passwords_with_the_count() -> None:
    problems = POLICY.violations("corta", document_number=DOC)
    assert problems == ["Debe tener al menos 12 caracteres (tiene 5)."]


def test_refuses_more_than_the_maximum() -> None:
    assert any("como máximo" in p for p in POLICY.violations("a" * (MAX_LENGTH + 1), document_number=DOC))


@pytest.mark.parametrize("password", ["qwertyuiopasdf", "QWERTYUIOPASDF", "contraseña123"])
def test_refuses_common_passwords_whatever_the_case(password: str) -> None:
    assert any("común" in p for p in POLICY.violations(password, document_number=DOC))


def test_refuses_the_document_number_and_the_cooperative_name() -> None:
    assert "No puede contener su número de documento." in POLICY.violations(
        f"mi clave {DOC} segura", document_number=DOC)
    assert "No puede contener el nombre de la cooperativa." in POLICY.violations(
        "amo a COOPEJEMPLO mucho", document_number=DOC)
    assert "No puede contener el nombre de la cooperativa." in POLICY.violations(
        "cooperativa de ahorro y credito ejemplo!", document_number=DOC)


def test_check_raises_with_every_reason() -> None:
    with pytest.raises(WeakPassword) as caught:
        POLICY.check(DOC, document_number=DOC)
    assert caught.value.code == "weak_password"
    reasons = caught.value.extra["reasons"]
    assert "Debe tener al menos 12 caracteres (tiene 10)." in reasons
    assert "No puede contener su número de documento." in reasons


def test_hashes_verify_and_long_passwords_count_in_full() -> None:
    hasher = PasswordHasher("pepper", cost=4)
    long_a = "á" * 60 + "final-a"  # > 72 bytes in UTF-8
    long_b = "á" * 60 + "final-b"
    stored = hasher.hash(long_a)
    assert stored.startswith("v1$$2b$04$")
    assert hasher.verify(long_a, stored)
    assert not hasher.verify(long_b, stored)  # no silent truncation at 72 bytes


def test_normalizes_unicode_before_hashing() -> None:
    hasher = PasswordHasher("pepper", cost=4)
    stored = hasher.hash("contrasen\u0303a muy larga")  # n + combining tilde
    assert hasher.verify("contraseña muy larga", stored)


def test_pepper_matters_and_unknown_hash_is_false() -> None:
    stored = PasswordHasher("pepper-1", cost=4).hash("una frase bastante larga")
    assert not PasswordHasher("pepper-2", cost=4).verify("una frase bastante larga", stored)
    assert not PasswordHasher("pepper-1", cost=4).verify("una frase bastante larga", None)


def test_rehash_needed_when_cost_changes() -> None:
    stored = PasswordHasher("p", cost=4).hash("una frase bastante larga")
    assert not PasswordHasher("p", cost=4).needs_rehash(stored)
    assert PasswordHasher("p", cost=5).needs_rehash(stored)


def test_token_hash_is_sha256_hex() -> None:
    assert len(hash_token("abc")) == 64
