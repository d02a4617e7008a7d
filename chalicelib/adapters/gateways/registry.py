"""Which gateway a stage uses (``GATEWAY``); adapters are imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.config import ConfigError, Settings

if TYPE_CHECKING:
    from chalicelib.adapters.gateways.base import PaymentGateway
    from chalicelib.context import Context


def _wompi(settings: Settings) -> PaymentGateway:
    from chalicelib.adapters.gateways import wompi

    return wompi.from_settings(settings)


#: Adding PlacetoPay later is one more entry here.
FACTORIES: dict[str, Callable[[Settings], PaymentGateway]] = {
    "wompi": _wompi,
}


def gateway_for(ctx: Context) -> PaymentGateway:
    name = ctx.settings.gateway.strip().lower()
    factory = FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"GATEWAY must be one of {sorted(FACTORIES)}, got {ctx.settings.gateway!r}")
    return factory(ctx.settings)
