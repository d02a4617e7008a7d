"""HMAC-signed, expiring values (the step-1 login ticket, form CSRF tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class BadSignature(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: str, purpose: str) -> None:
        # One derived key per purpose: a CSRF token can never pass as a login ticket.
        self._key = hmac.new(key.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).digest()

    def mac(self, message: str) -> str:
        return _b64(hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest())

    def sign(self, payload: dict[str, Any], *, expires_at: int) -> str:
        body = _b64(json.dumps({**payload, "exp": expires_at}, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self.mac(body)}"

    def unsign(self, token: object, *, now: int) -> dict[str, Any]:
        if (not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048
                or not token.isascii()):
            raise BadSignature("malformed")
        body, mac = token.split(".")
        if not hmac.compare_digest(mac.encode("ascii"), self.mac(body).encode("ascii")):
            raise BadSignature("bad signature")
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadSignature("malformed payload") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            raise BadSignature("malformed payload")
        if payload["exp"] <= now:
            raise BadSignature("expired")
        return payload
