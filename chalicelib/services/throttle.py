"""Per-IP (and per-account) fixed-window throttling of the anonymous entry points."""

from __future__ import annotations

import logging
from datetime import timedelta

from chalicelib.context import Context
from chalicelib.domain.errors import Throttled
from chalicelib.observability import log_event

THROTTLED_MESSAGE = ("Ha realizado demasiados intentos en poco tiempo. "
                     "Espere unos minutos y vuelva a intentarlo.")


def allow(ctx: Context, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count a hit for ``key``; False when the window's ``limit`` is used up (one round trip)."""
    now = ctx.now()
    window = int(now.timestamp()) // window_seconds
    expires = now.replace(microsecond=0) + timedelta(seconds=window_seconds * 2)
    with ctx.unit_of_work() as uow:
        return uow.rate_counters.hit(f"{key}:{window}", limit=limit, expires_at=expires)


def check_ip(ctx: Context, action: str, ip: str) -> None:
    limits = {
        "identify": ctx.settings.rate_identify,
        "login": ctx.settings.rate_login,
        "recovery": ctx.settings.rate_recovery,
        "staff_login": ctx.settings.rate_staff_login,
    }
    if not allow(ctx, f"ip:{action}:{ip}", limit=limits[action],
                 window_seconds=ctx.settings.rate_window_seconds):
        log_event("excess_rate_limit_exceeded", level=logging.WARNING, action=action, ip=ip,
                  limit=limits[action])
        raise Throttled(THROTTLED_MESSAGE)
