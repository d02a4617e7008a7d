"""Every response header value passes here: no control characters, no attribute we did not set.

Builders (:func:`cookie`, :func:`location`, :func:`attachment`) refuse a value that does not have
the exact shape they expect, so a value taken from a request can never add a header (CR/LF) or a
cookie attribute (``;``). :func:`check` is the last gate, run on every response by
``http.envelope``: it re-reads every header, and every ``Set-Cookie`` against the attributes the
builders write, whatever code produced them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: C0 controls (CR, LF, NUL, TAB...), DEL and C1 controls: never in a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Our cookie values: random URL-safe tokens, signed values (base64url "." MAC), "-1.0".
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9._~-]{0,4096}")
_COOKIE_PATH = re.compile(r"/[A-Za-z0-9/_.~-]{0,200}")
_SAME_SITE = ("Lax", "Strict")
#: The attributes :func:`cookie` writes; anything else in a Set-Cookie is someone else's.
_ATTRIBUTES: dict[str, re.Pattern[str] | None] = {
    "path": _COOKIE_PATH, "max-age": re.compile(r"\d{1,10}"), "samesite": re.compile("|".join(_SAME_SITE)),
    "httponly": None, "secure": None}
_SITE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]{0,2047}")
_ABSOLUTE_URL = re.compile(r"https?://[^\s/?#\x00-\x1f\x7f-\x9f]+(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class UnsafeHeader(ValueError):
    """A value that would change the response's headers; a bug or an attack, never sent."""


def value(text: object) -> str:
    """A header value as it is, or UnsafeHeader when it holds a control character."""
    if not isinstance(text, str) or _CONTROL.search(text):
        raise UnsafeHeader(f"header value with a control character: {text!r:.80}")
    return text


def cookie(name: str, content: str, *, path: str = "/", same_site: str = "Lax", secure: bool,
           max_age: int | None = None) -> str:
    """One ``Set-Cookie`` value; UnsafeHeader unless every part has exactly the expected shape."""
    if not _COOKIE_NAME.fullmatch(name) or not _COOKIE_VALUE.fullmatch(content):
        raise UnsafeHeader(f"cookie {name!r:.80} with an unexpected name or value")
    if not _COOKIE_PATH.fullmatch(path) or same_site not in _SAME_SITE:
        raise UnsafeHeader(f"cookie {name!r} with an unexpected path or SameSite")
    parts = [f"{name}={content}", f"Path={path}", "HttpOnly", f"SameSite={same_site}"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise UnsafeHeader(f"cookie {name!r} with Max-Age {max_age!r}")
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def location(url: str) -> str:
    """A redirect target: a path of this site (never ``//host``) or an absolute http(s) URL."""
    if not isinstance(url, str) or not (_SITE_PATH.fullmatch(url) or _ABSOLUTE_URL.fullmatch(url)):
        raise UnsafeHeader(f"redirect target {url!r:.120} is not a plain path or http(s) URL")
    return url


def attachment(filename: str) -> str:
    """``Content-Disposition`` for a download named by us (letters, digits, ``.``, ``_``, ``-``)."""
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        raise UnsafeHeader(f"download name {filename!r:.120} has unexpected characters")
    return f'attachment; filename="{filename}"'


def check(headers: Mapping[str, Any]) -> None:
    """The last gate: UnsafeHeader for a control character anywhere or a foreign cookie attribute."""
    for name, raw in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UnsafeHeader(f"header name {name!r:.80}")
        for item in raw if isinstance(raw, (list, tuple)) else [raw]:
            text = value(item)
            if name.lower() == "set-cookie":
                _check_cookie(text)


def _check_cookie(text: str) -> None:
    first, *attributes = text.split("; ")
    cookie_name, equals, content = first.partition("=")
    if not equals or not _COOKIE_NAME.fullmatch(cookie_name) or not _COOKIE_VALUE.fullmatch(content):
        raise UnsafeHeader(f"Set-Cookie {text!r:.120} has an unexpected name or value")
    seen: set[str] = set()
    for attribute in attributes:
        key, has_value, setting = attribute.partition("=")
        key = key.lower()
        shape = _ATTRIBUTES.get(key)
        if (key not in _ATTRIBUTES or key in seen or bool(has_value) != (shape is not None)
                or (shape is not None and not shape.fullmatch(setting))):
            raise UnsafeHeader(f"Set-Cookie {text!r:.120} has an attribute we never set")
        seen.add(key)
