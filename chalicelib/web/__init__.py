"""HTTP adapters used by the entry points in ``app.py``: pages, JSON API, static files.

Submodules load on first use (PEP 562), so importing ``app.py`` at a cold start does not pay for
templates, services and models that the first request may not need. The type checker sees them
as the imports below, which never run.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.web import (
        api,
        console_pages,
        pages,
        payment_pages,
        payments_api,
        preferences,
        reminder_pages,
        staff_api,
        staff_pages,
        static,
    )

__all__ = ["api", "console_pages", "pages", "payment_pages", "payments_api", "preferences",
           "reminder_pages", "staff_api", "staff_pages", "static"]
_LAZY = frozenset(__all__)


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
