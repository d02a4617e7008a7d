"""What text from outside may hold, decided in one place (pure).

Names and descriptions come from the core system's files and end up on pages, in emails, in the
PDF receipt and in the export. Two kinds of characters are never taken in:

* control characters (Unicode category ``Cc``: C0, DEL and C1, NUL and line breaks included), which
  break layouts, logs and files, and
* the bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) and
  the invisible direction marks (U+200E, U+200F, U+061C), plus the line and paragraph separators
  (U+2028, U+2029): they reorder what is shown around them (text-direction spoofing, e.g. a
  reference or an amount that reads backwards on a payment page).

The import refuses a value holding one (:func:`first_forbidden`); text that reaches a rendering
by another way is cleaned of them there (:func:`visible`). Accepted text is stored NFC-normalised
(:func:`normalized`), so the same name typed on two systems compares equal.
"""

from __future__ import annotations

import re
import unicodedata

#: Direction controls and marks, and the line and paragraph separators.
LAYOUT_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
#: What the importer trims around a value: spaces (Unicode ``Zs``), never a control character.
SPACES = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"


def forbidden(char: str) -> bool:
    """A control character or a direction control (see the module)."""
    return char in LAYOUT_CONTROLS or unicodedata.category(char) == "Cc"


def first_forbidden(value: str) -> tuple[int, str] | None:
    """``(position from 1, character)`` of the first forbidden character, or None."""
    for index, char in enumerate(value):
        if forbidden(char):
            return index + 1, char
    return None


def code_point(char: str) -> str:
    """``U+202E`` (a control character has no name to show, and may not be shown itself)."""
    return f"U+{ord(char):04X}"


def normalized(value: str) -> str:
    """NFC, runs of spaces as one, no spaces at the ends."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def visible(value: str) -> str:
    """``value`` without its forbidden characters (for renderings that cannot refuse text)."""
    return "".join(char for char in value if not forbidden(char))


def shown(value: str, limit: int = 40) -> str:
    """A value quoted in a message (reports, logs): forbidden characters written as ``\\u202e``
    escapes, so a message can never carry a line break, a terminal escape or a direction control;
    cut at ``limit`` characters."""
    cut = value if len(value) <= limit else value[:limit - 3] + "..."
    return "".join(char.encode("unicode_escape").decode("ascii") if forbidden(char) else char
                   for char in cut)


def is_identifier(value: str) -> bool:
    """An identifier of the core system: ASCII letters, digits, ``-``, ``_``, ``.`` and ``/``,
    starting with a letter or a digit (so never a spreadsheet formula, a space or a quote)."""
    return _IDENTIFIER.fullmatch(value) is not None
