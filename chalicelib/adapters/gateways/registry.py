"""Which gateway a payment uses: its recorded one, else the stage's ``GATEWAY``. Adapters are
imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.config import ConfigError, Settings

if TYPE_CHECKING:
    from chalicelib.adapters.gateways.base import PaymentGateway


class HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


def _wompi(settings: Settings) -> PaymentGateway:
    from chalicelib.adapters.gateways import wompi

    return wompi.from_settings(settings)


def _placetopay(settings: Settings) -> PaymentGateway:
    from chalicelib.adapters.gateways import placetopay

    return placetopay.from_settings(settings)


FACTORIES: dict[str, Callable[[Settings], PaymentGateway]] = {
    "wompi": _wompi,
    "placetopay": _placetopay,
}


def gateway_for(settings: Settings | HasSettings, name: str | None = None) -> PaymentGateway:
    """The gateway called ``name`` (a payment's recorded gateway), by default the configured one.

    Also takes anything with ``settings`` (a Context), as ``Context.gateway`` calls it. Every
    known gateway stays usable after ``GATEWAY`` changes, so in-flight payments of the previous
    one finish through it.
    """
    if not isinstance(settings, Settings):
        settings = settings.settings
    wanted = (name or settings.gateway).strip().lower()
    factory = FACTORIES.get(wanted)
    if factory is None:
        source = "a payment's gateway" if name else "GATEWAY"
        raise ConfigError(f"{source} must be one of {sorted(FACTORIES)}, got {wanted!r}")
    return factory(settings)
