"""Password hashing: bcrypt over an HMAC-SHA-384 pre-hash keyed with a pepper.

bcrypt reads at most 72 bytes (bcrypt 5 refuses longer input). Pre-hashing with a keyed HMAC and
base64 (OWASP Password Storage CS) lets passwords of any length count in full, avoids NUL bytes and
password shucking, and keeps the pepper outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

import bcrypt

from chalicelib.domain.passwords import normalize

_SCHEME = "v1$"


class PasswordHasher:
    def __init__(self, pepper: str, cost: int) -> None:
        self._pepper = pepper.encode("utf-8")
        self._cost = cost

    def _prehash(self, password: str) -> bytes:
        digest = hmac.new(self._pepper, normalize(password).encode("utf-8"), hashlib.sha384).digest()
        return base64.b64encode(digest)

    def hash(self, password: str) -> str:
        hashed = bcrypt.hashpw(self._prehash(password), bcrypt.gensalt(rounds=self._cost))
        return _SCHEME + hashed.decode("ascii")

    def verify(self, password: str, stored: str | None) -> bool:
        """Constant work whatever ``stored`` is: a missing hash is checked against a dummy one."""
        candidate = self._prehash(password)
        if stored and stored.startswith(_SCHEME):
            return bcrypt.checkpw(candidate, stored[len(_SCHEME):].encode("ascii"))
        bcrypt.checkpw(candidate, _dummy_hash(self._cost))
        return False

    def needs_rehash(self, stored: str) -> bool:
        return not stored.startswith(f"{_SCHEME}$2b${self._cost:02d}$")


@lru_cache(maxsize=4)
def _dummy_hash(cost: int) -> bytes:
    """A hash of the same cost, made once per container, to spend the same time on unknown members."""
    return bcrypt.hashpw(b"dummy-password-for-timing", bcrypt.gensalt(rounds=cost))


def hash_token(token: str) -> str:
    """Tokens of 128+ random bits need no salt or work factor (ASVS 5.0 6.5.2): plain SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
