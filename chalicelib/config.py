"""The one place configuration is read.

Values come from environment variables that `.chalice/config.json` sets per stage. They are read
lazily (never at import), because `chalice.test.Client` applies a stage's variables per request.
Secrets are read through :mod:`chalicelib.adapters.secrets` (an environment variable in the local
stage, SSM Parameter Store elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.domain import allocation
from chalicelib.domain.payments import COLOMBIA as COLOMBIA  # the rule lives in the domain


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed (a deployment mistake, not user input)."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _one_of(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {[a for a in allowed if a]}, got {value!r}")
    return value


def _allocation_order(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("ALLOCATION_ORDER")
    if raw is None or raw.strip() == "":
        return allocation.DEFAULT_ORDER
    try:
        return allocation.parse_order(raw)
    except ValueError as exc:
        raise ConfigError(f"ALLOCATION_ORDER {exc}") from exc


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    public_base_url: str
    cooperative_name: str
    cooperative_short_name: str
    cooperative_nit: str
    cooperative_site_url: str
    support_phone: str
    support_email: str
    mail_sender: str
    terms_version: str
    bcrypt_cost: int
    block_copy_paste: bool
    cookie_secure: bool
    trust_forwarded_for: bool
    session_idle_seconds: int
    session_absolute_seconds: int
    session_warning_seconds: int
    login_ticket_seconds: int
    lockout_threshold: int
    lockout_base_seconds: int
    lockout_max_seconds: int
    max_failures_per_hour: int
    rate_window_seconds: int
    rate_identify: int
    rate_login: int
    rate_recovery: int
    recovery_ttl_seconds: int
    recovery_max_attempts: int
    recovery_response_floor_ms: int
    ssm_prefix: str
    # Payments
    gateway: str
    gateway_base_url: str
    gateway_public_key: str
    payment_min_amount: int
    payment_max_amount: int
    poll_first_seconds: int
    poll_every_seconds: int
    poll_horizon_seconds: int
    created_expiry_seconds: int
    bank_list_ttl_seconds: int
    webhook_max_age_seconds: int
    # Back office
    import_bucket: str
    staff_api_key_required: bool
    # Member reminders
    reminder_days_before_due: int = 3
    pending_reminder_seconds: int = 2 * 3600
    # How long the gateway keeps an abandoned PSE transaction pending before ending it (the
    # member may pay again after that), and how many "Consultar estado" a payment gets a minute.
    gateway_pending_expiry_seconds: int = 30 * 60
    rate_payment_query: int = 3
    reminder_quiet_start_hour: int = 21  # Colombian time: no "still pending" email from 21:00...
    reminder_quiet_end_hour: int = 7  # ...to 7:00 (due-date reminders go out at 8:00 anyway)
    # How a loan payment is applied to the instalment's parts: the cooperative's order.
    allocation_order: tuple[str, ...] = allocation.DEFAULT_ORDER
    # Staff console: the Cognito user pool and app client, staff sessions, sign-in throttle.
    staff_user_pool_id: str = ""
    staff_client_id: str = ""
    staff_session_idle_seconds: int = 15 * 60
    staff_session_absolute_seconds: int = 8 * 3600
    staff_signin_seconds: int = 5 * 60  # between the password and the code (or the set-up)
    rate_staff_login: int = 20
    # Gateways. Wompi: the environment its events must carry ("test" / "prod"); empty = the one
    # of the public key (pub_prod_ → prod). PlacetoPay WebCheckout: the site's login (its secret
    # key is the secret PLACETOPAY_SECRET_KEY), the API's base URL, and where it notifies.
    wompi_environment: str = ""
    placetopay_base_url: str = "https://checkout-test.placetopay.com"
    placetopay_login: str = ""
    placetopay_notification_url: str = ""
    # Side effects after the commit: the events table's DynamoDB Stream (its ARN exists only once
    # the table does; without it app.py registers a placeholder the merge template replaces).
    events_stream_arn: str = ""

    @property
    def base_path(self) -> str:
        """Path prefix of every link (e.g. ``/api`` on a raw execute-api URL, ``""`` locally)."""
        return urlsplit(self.public_base_url).path.rstrip("/")

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def session_cookie_name(self) -> str:
        # The __Host- prefix requires Secure; the local stage serves plain HTTP.
        return "__Host-sv_session" if self.cookie_secure else "sv_session"

    @property
    def staff_cookie_name(self) -> str:
        return "__Host-sv_staff" if self.cookie_secure else "sv_staff"

    @property
    def gateway_origin(self) -> str:
        parts = urlsplit(self.gateway_base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        stage = env.get("STAGE", "dev")
        public_base_url = env.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
        return cls(
            stage=stage,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            table_prefix=env.get("TABLE_PREFIX", f"sucursal-virtual-{stage}"),
            public_base_url=public_base_url,
            cooperative_name=env.get("COOPERATIVE_NAME", "Cooperativa de Ahorro y Crédito Ejemplo"),
            cooperative_short_name=env.get("COOPERATIVE_SHORT_NAME", "Coopejemplo"),
            cooperative_nit=env.get("COOPERATIVE_NIT", "900.000.000-0"),
            cooperative_site_url=env.get("COOPERATIVE_SITE_URL", "https://www.cooperativa.example"),
            support_phone=env.get("SUPPORT_PHONE", "(601) 000 0000"),
            support_email=env.get("SUPPORT_EMAIL", "soporte@cooperativa.example"),
            mail_sender=env.get("MAIL_SENDER", "no-responder@cooperativa.example"),
            terms_version=env.get("TERMS_VERSION", "2026-11"),
            bcrypt_cost=_int(env, "BCRYPT_COST", 12),
            block_copy_paste=_bool(env, "BLOCK_COPY_PASTE", True),
            cookie_secure=_bool(env, "COOKIE_SECURE", True),
            trust_forwarded_for=_bool(env, "TRUST_FORWARDED_FOR", False),
            session_idle_seconds=_int(env, "SESSION_IDLE_SECONDS", 600),
            session_absolute_seconds=_int(env, "SESSION_ABSOLUTE_SECONDS", 3600),
            session_warning_seconds=_int(env, "SESSION_WARNING_SECONDS", 120),
            login_ticket_seconds=_int(env, "LOGIN_TICKET_SECONDS", 300),
            lockout_threshold=_int(env, "LOCKOUT_THRESHOLD", 5),
            lockout_base_seconds=_int(env, "LOCKOUT_BASE_SECONDS", 60),
            lockout_max_seconds=_int(env, "LOCKOUT_MAX_SECONDS", 900),
            max_failures_per_hour=_int(env, "MAX_FAILURES_PER_HOUR", 100),
            rate_window_seconds=_int(env, "RATE_WINDOW_SECONDS", 600),
            rate_identify=_int(env, "RATE_IDENTIFY", 60),
            rate_login=_int(env, "RATE_LOGIN", 30),
            rate_recovery=_int(env, "RATE_RECOVERY", 10),
            recovery_ttl_seconds=_int(env, "RECOVERY_TTL_SECONDS", 900),
            recovery_max_attempts=_int(env, "RECOVERY_MAX_ATTEMPTS", 5),
            recovery_response_floor_ms=_int(env, "RECOVERY_RESPONSE_FLOOR_MS", 700),
            ssm_prefix=env.get("SSM_PREFIX", ""),
            gateway=env.get("GATEWAY", "wompi"),
            gateway_base_url=env.get("GATEWAY_BASE_URL", "https://sandbox.wompi.co/v1").rstrip("/"),
            gateway_public_key=env.get("GATEWAY_PUBLIC_KEY", ""),
            payment_min_amount=_int(env, "PAYMENT_MIN_AMOUNT", 1500),
            payment_max_amount=_int(env, "PAYMENT_MAX_AMOUNT", 20_000_000),
            poll_first_seconds=_int(env, "POLL_FIRST_SECONDS", 7 * 60),
            poll_every_seconds=_int(env, "POLL_EVERY_SECONDS", 12 * 60),
            poll_horizon_seconds=_int(env, "POLL_HORIZON_SECONDS", 24 * 3600),
            created_expiry_seconds=_int(env, "CREATED_EXPIRY_SECONDS", 30 * 60),
            bank_list_ttl_seconds=_int(env, "BANK_LIST_TTL_SECONDS", 24 * 3600),
            webhook_max_age_seconds=_int(env, "WEBHOOK_MAX_AGE_SECONDS", 24 * 3600 + 3600),
            import_bucket=env.get("IMPORT_BUCKET", ""),
            staff_api_key_required=_bool(env, "STAFF_API_KEY_REQUIRED", False),
            reminder_days_before_due=_int(env, "REMINDER_DAYS_BEFORE_DUE", 3),
            pending_reminder_seconds=_int(env, "PENDING_REMINDER_SECONDS", 2 * 3600),
            gateway_pending_expiry_seconds=_int(env, "GATEWAY_PENDING_EXPIRY_SECONDS", 30 * 60),
            rate_payment_query=_int(env, "RATE_PAYMENT_QUERY", 3),
            reminder_quiet_start_hour=_int(env, "REMINDER_QUIET_START_HOUR", 21),
            reminder_quiet_end_hour=_int(env, "REMINDER_QUIET_END_HOUR", 7),
            allocation_order=_allocation_order(env),
            staff_user_pool_id=env.get("STAFF_USER_POOL_ID", ""),
            staff_client_id=env.get("STAFF_CLIENT_ID", ""),
            staff_session_idle_seconds=_int(env, "STAFF_SESSION_IDLE_SECONDS", 15 * 60),
            staff_session_absolute_seconds=_int(env, "STAFF_SESSION_ABSOLUTE_SECONDS", 8 * 3600),
            staff_signin_seconds=_int(env, "STAFF_SIGNIN_SECONDS", 5 * 60),
            rate_staff_login=_int(env, "RATE_STAFF_LOGIN", 20),
            wompi_environment=_one_of(env, "WOMPI_ENVIRONMENT", ("", "test", "prod")),
            placetopay_base_url=env.get("PLACETOPAY_BASE_URL",
                                        "https://checkout-test.placetopay.com").rstrip("/"),
            placetopay_login=env.get("PLACETOPAY_LOGIN", ""),
            placetopay_notification_url=(env.get("PLACETOPAY_NOTIFICATION_URL")
                                         or f"{public_base_url}/webhooks/placetopay"),
            events_stream_arn=env.get("EVENTS_STREAM_ARN", ""),
        )


def get_settings() -> Settings:
    """Settings for the current process environment (cheap; call it where needed)."""
    return Settings.from_env(os.environ)
