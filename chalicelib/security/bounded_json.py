"""JSON from outside (request bodies, gateway events and answers), parsed within bounds.

``json.loads`` recurses once per nesting level and raises ``RecursionError`` (not ``ValueError``)
near Python's recursion limit, so a 10 KB body nested 5,000 deep would escape every ``except
ValueError``. :func:`loads` measures the nesting first, in one pass that never recurses, and
refuses too large or too deep a document with a :class:`ValueError` subclass.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # our bodies nest at most 5 levels; Wompi's events and answers about 5
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class TooLarge(ValueError):
    """More bytes than the caller accepts."""


class TooDeep(ValueError):
    """Arrays and objects nested deeper than the caller accepts."""


def depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    level = deepest = 0
    for char in brackets:
        level += 1 if char in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def loads(data: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` of UTF-8 ``data``; TooLarge, TooDeep, or ``ValueError`` when it is not JSON
    (``UnicodeDecodeError`` is one)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise TooLarge(f"{len(raw)} bytes, at most {max_bytes} accepted")
    text = raw.decode("utf-8")
    if depth(text) > max_depth:
        raise TooDeep(f"nested deeper than {max_depth} levels")
    return json.loads(text)
