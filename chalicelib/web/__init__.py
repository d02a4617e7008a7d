"""HTTP adapters used by the entry points in ``app.py``: pages, JSON API, static files.

Submodules load on first use (PEP 562), so importing ``app.py`` at a cold start does not pay for
templates, services and models that the first request may not need.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_LAZY = frozenset({"api", "pages", "payment_pages", "payments_api", "static", "preferences",
                   "reminder_pages", "staff_api", "staff_pages", "console_pages"})


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
