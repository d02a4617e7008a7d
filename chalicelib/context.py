"""What a use case needs from the outside world, built once per configuration.

Clocks, randomness and sleeping come from :class:`Runtime` so tests can replace them instead of
waiting; use cases read them through their context (``ctx.now()``, ``ctx.monotonic()``,
``ctx.sleep()``). Collaborators (hasher, mailer, gateway) are built lazily, off the cold-start
path. This is the composition root: it binds the DynamoDB models to the settings' tables.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.adapters.gateways.base import PaymentGateway
    from chalicelib.adapters.mailer import Mailer
    from chalicelib.security.passwords import PasswordHasher
    from chalicelib.security.signing import Signer
    from chalicelib.services.unit_of_work import UnitOfWork


class Runtime:
    """Process-wide sources of time and randomness (tests patch these attributes)."""

    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    token: Callable[[int], str] = staticmethod(secrets.token_urlsafe)
    choice: Callable[[str], str] = staticmethod(secrets.choice)


@dataclass
class Context:
    settings: Settings
    #: Where units of work come from: DynamoDB unless a test gives its fake.
    units_of_work: Callable[[], UnitOfWork] | None = None
    _signers: dict[str, Signer] = field(default_factory=dict)
    _gateways: dict[str, PaymentGateway] = field(default_factory=dict)  # other than the configured
    #: What a use case keeps for the container's life, by name (e.g. the bank list until it expires).
    memos: dict[str, Any] = field(default_factory=dict)

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work, for one use case (or one attempt of it)."""
        if self.units_of_work is not None:
            return self.units_of_work()
        from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

        _bind_tables(self.settings)
        return DynamoUnitOfWork()

    def now(self) -> datetime:
        return Runtime.clock()

    def monotonic(self) -> float:
        """Seconds for measuring a duration (never goes back; not a time of day)."""
        return Runtime.monotonic()

    def sleep(self, seconds: float) -> None:
        Runtime.sleep(seconds)

    def token(self, nbytes: int = 32) -> str:
        """URL-safe random text with ``nbytes`` of entropy (32 bytes = 256 bits)."""
        return Runtime.token(nbytes)

    def random_code(self, length: int, alphabet: str) -> str:
        return "".join(Runtime.choice(alphabet) for _ in range(length))

    def secret(self, name: str) -> str:
        from chalicelib.adapters.secrets import get_secret

        return get_secret(self.settings, name)

    @cached_property
    def hasher(self) -> PasswordHasher:
        from chalicelib.security.passwords import PasswordHasher

        return PasswordHasher(self.secret("PASSWORD_PEPPER"), self.settings.bcrypt_cost)

    def signer(self, purpose: str) -> Signer:
        if purpose not in self._signers:
            from chalicelib.security.signing import Signer

            self._signers[purpose] = Signer(self.secret("SIGNING_KEY"), purpose)
        return self._signers[purpose]

    @cached_property
    def mailer(self) -> Mailer:
        from chalicelib.adapters.mailer import SesMailer

        return SesMailer(self.settings)

    @cached_property
    def gateway(self) -> PaymentGateway:
        """The configured gateway: new payments start there."""
        from chalicelib.adapters.gateways.registry import gateway_for

        return gateway_for(self)

    def gateway_for(self, name: str | None) -> PaymentGateway:
        """The gateway a payment was started with (``payment.gateway``): it is reconciled there,
        even after the stage switched to another one."""
        if name is None or name.strip().lower() in (self.settings.gateway.strip().lower(),
                                                    self.gateway.name.strip().lower()):
            return self.gateway
        wanted = name.strip().lower()
        if wanted not in self._gateways:
            from chalicelib.adapters.gateways.registry import gateway_for

            self._gateways[wanted] = gateway_for(self.settings, wanted)
        return self._gateways[wanted]

    def for_gateway(self, name: str | None) -> Context:
        """This context with the gateway called ``name`` as its ``gateway`` (a notification is
        verified and confirmed by the gateway whose webhook path it came to)."""
        gateway = self.gateway_for(name)
        if gateway is self.gateway:
            return self
        other = replace(self, _signers=self._signers, _gateways=self._gateways)
        vars(other)["gateway"] = gateway  # the cached property's slot
        return other


_contexts: dict[Settings, Context] = {}


def _bind_tables(settings: Settings) -> None:
    """The DynamoDB models' table names and region, from ``settings`` (idempotent, cheap)."""
    from chalicelib.adapters.dynamo.models import bind_tables

    bind_tables(settings)


def get_context() -> Context:
    """The context of the process's current settings, the DynamoDB models bound to them."""
    settings = get_settings()
    _bind_tables(settings)
    context = _contexts.get(settings)
    if context is None:
        context = _contexts[settings] = Context(settings)
    return context


def reset_contexts() -> None:
    """Forget built collaborators (tests that change secrets or swap adapters)."""
    _contexts.clear()
