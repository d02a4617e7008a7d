"""Staff sign-in on Cognito (password, then a TOTP code) and server-side staff sessions.

Cognito holds the identity, the password, the lockout and the TOTP secret; the app keeps only a
session. A sign-in in progress is a *pending* item of the staff-sessions table (``stage`` = the
challenge it waits for, a few minutes to live) behind the same cookie; it opens no page. Only an
answered TOTP challenge (``SOFTWARE_TOKEN_MFA``, or ``MFA_SETUP`` right after the user's first code
was verified) becomes a session, with a fresh id: a staff user without MFA never gets one. When
Cognito answers the password with tokens and no challenge (MFA not set up in a pool that does not
enforce it), the app sets up TOTP with that access token and then asks for a new sign-in.

Roles are the Cognito groups ``consulta`` < ``tesoreria`` < ``administrador``, read at sign-in.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.cognito import ROLES, AuthStep, CognitoRefusal, StaffDirectory
from chalicelib.context import Context
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict, Forbidden, InvalidCredentials, InvalidInput, Throttled
from chalicelib.domain.sessions import StaffSession
from chalicelib.observability import log_event
from chalicelib.security.passwords import hash_token
from chalicelib.services import throttle
from chalicelib.services.audit import audit_entry, record

ACTIVE = "ACTIVE"
NEW_PASSWORD = "NEW_PASSWORD_REQUIRED"  # a challenge name  # noqa: S105  # nosec B105
MFA_CODE = "SOFTWARE_TOKEN_MFA"
MFA_SETUP = "MFA_SETUP"  # Cognito's challenge: set up TOTP (a pool that requires MFA)
#: Ours: set up TOTP with the access token (no challenge), then sign in again.
TOKEN_SETUP = "TOKEN_SETUP"  # a stage name  # noqa: S105  # nosec B105
STAFF_SUBJECT = "staff"  # the audit partition of staff sign-ins and actions not about a member
RANKS = {role: rank for rank, role in enumerate(ROLES, start=1)}
ROLE_LABELS = {"consulta": "Consulta", "tesoreria": "Tesorería", "administrador": "Administrador"}

GENERIC_FAILURE = ("Usuario o contraseña incorrectos. Después de varios intentos fallidos el acceso "
                   "se bloquea temporalmente.")
CODE_MISMATCH = "El código no es correcto o ya venció. Escriba el código que muestra ahora su aplicación."
SIGNIN_EXPIRED = "El tiempo para completar el ingreso terminó. Ingrese de nuevo su usuario y contraseña."
NO_ROLE = "Su usuario no tiene un rol asignado en la Sucursal Virtual. Pídalo a un administrador."
UNSUPPORTED = "Su usuario necesita un segundo factor que este portal no admite. Consulte a un administrador."
LOCKED = "Demasiados intentos. Espere unos minutos antes de volver a intentarlo."
NOT_CONFIGURED = "El ingreso del personal no está configurado en este entorno."
FORBIDDEN = "Su rol no permite esta acción."
_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
_CODE = re.compile(r"[0-9]{6}")
MAX_PASSWORD = 256
TOUCH_AFTER = timedelta(seconds=30)  # a session's idle timeout slides at most this often


@dataclass(frozen=True)
class StaffSessionView:
    session_hash: str
    username: str
    groups: tuple[str, ...]
    csrf_token: str
    idle_expires_at: datetime
    expires_at: datetime

    @property
    def actor(self) -> str:
        """How the audit trail names this person."""
        return f"staff:{self.username}"

    @property
    def role(self) -> str:
        return max(self.groups, key=lambda g: RANKS[g])

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def can(self, role: str) -> bool:
        """At least ``role`` (administrador ⊇ tesoreria ⊇ consulta)."""
        return RANKS[self.role] >= RANKS[role]


@dataclass(frozen=True)
class SignInStep:
    """Where the sign-in stands: ``stage`` is ACTIVE (signed in), DONE (set up, sign in again) or a
    pending stage; ``token`` is the cookie value to set (None: keep the current cookie)."""

    stage: str
    token: str | None = None


def valid_username(value: str) -> bool:
    return bool(_USERNAME.fullmatch(value))


def temporary_password(ctx: Context) -> str:
    """For a new staff user (Cognito forces a change at the first sign-in): 128 random bits."""
    return f"Tmp-{ctx.token(16)}"


def directory(ctx: Context) -> StaffDirectory:
    return StaffDirectory(ctx.settings)


def require(session: StaffSessionView, role: str) -> None:
    if not session.can(role):
        log_event("authz_fail", level=logging.WARNING, actor=session.actor, needed=role)
        raise Forbidden(FORBIDDEN, code="forbidden_role")


def _refusal(ctx: Context, exc: CognitoRefusal, *, username: str, ip: str) -> Exception:
    record(ctx, subject=STAFF_SUBJECT, event="authn_login_fail", actor=f"staff:{username}", ip=ip,
           reason=exc.code)
    if exc.code in ("TooManyRequestsException", "LimitExceededException",
                    "TooManyFailedAttemptsException"):
        return Throttled(LOCKED)
    if exc.code in ("CodeMismatchException", "EnableSoftwareTokenMFAException"):
        return InvalidInput(CODE_MISMATCH, field="code", code="invalid_code")
    if exc.code == "InvalidPasswordException":
        return InvalidInput("La nueva contraseña no cumple la política del personal: al menos 12 "
                            "caracteres, distinta de la temporal.", field="new_password",
                            code="weak_password")
    if exc.code == "PasswordResetRequiredException":
        return InvalidCredentials("Su contraseña fue restablecida: pida a un administrador una "
                                  "contraseña temporal.", code="password_reset_required")
    if exc.code == "NotConfigured":
        return InvalidInput(NOT_CONFIGURED, code="not_configured")
    if exc.code in ("ExpiredCodeException",) or "session" in exc.message.lower():
        return InvalidCredentials(SIGNIN_EXPIRED, code="signin_expired")
    return InvalidCredentials(GENERIC_FAILURE)


def _pending(ctx: Context, *, username: str, stage: str, ip: str, session: str | None = None,
             access_token: str | None = None, secret: str | None = None) -> SignInStep:
    now = ctx.now()
    token = ctx.token(32)
    expires = now + timedelta(seconds=ctx.settings.staff_signin_seconds)
    with ctx.unit_of_work() as uow:
        uow.staff_sessions.add(StaffSession(
            session_hash=hash_token(token), username=username, stage=stage, csrf_token=ctx.token(32),
            created_at=now, last_seen_at=now, expires_at=expires, ip=ip, challenge_session=session,
            access_token=access_token, totp_secret=secret))
        uow.commit()
    return SignInStep(stage, token)


def _advance(ctx: Context, username: str, step: AuthStep, *, ip: str) -> SignInStep:
    """The next pending stage for what Cognito answered (never a session: see the module)."""
    dirx = directory(ctx)
    if step.challenge == NEW_PASSWORD:
        return _pending(ctx, username=username, stage=NEW_PASSWORD, ip=ip, session=step.session)
    if step.challenge == MFA_CODE:
        return _pending(ctx, username=username, stage=MFA_CODE, ip=ip, session=step.session)
    if step.challenge == MFA_SETUP:
        secret, session = dirx.associate_token(session=step.session)
        return _pending(ctx, username=username, stage=MFA_SETUP, ip=ip, session=session or step.session,
                        secret=secret)
    if step.challenge is None and step.access_token:
        log_event("authn_mfa_missing", level=logging.WARNING, actor=f"staff:{username}", ip=ip)
        secret, _ = dirx.associate_token(access_token=step.access_token)
        return _pending(ctx, username=username, stage=TOKEN_SETUP, ip=ip,
                        access_token=step.access_token, secret=secret)
    raise InvalidCredentials(UNSUPPORTED, code="unsupported_challenge")


def begin(ctx: Context, username: object, password: object, *, ip: str) -> SignInStep:
    """The username and password: the first pending stage, or a generic refusal."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username.strip()):
        raise InvalidInput("Escriba su usuario (letras, números y . _ @ + -).", field="username")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
        raise InvalidInput("Escriba su contraseña.", field="password")
    username = username.strip().lower()  # the pool is case-insensitive; the audit names one form
    throttle.check_ip(ctx, "staff_login", ip)
    try:
        step = directory(ctx).start(username, password)
    except CognitoRefusal as exc:
        raise _refusal(ctx, exc, username=username, ip=ip) from None
    return _advance(ctx, username, step, ip=ip)


def pending(ctx: Context, token: str | None) -> StaffSession | None:
    """The sign-in in progress behind this cookie, if it is still in time."""
    if not token or len(token) > 256:
        return None
    with ctx.unit_of_work() as uow:
        item = uow.staff_sessions.get(hash_token(token))
    if item is None or item.stage == ACTIVE:
        return None
    if ctx.now() >= item.expires_at:
        _end(ctx, item.session_hash)
        return None
    return item


def _end(ctx: Context, session_hash: str, entry: AuditEntry | None = None) -> None:
    """Delete a staff session or pending item, with the audit entry that says why, if any."""
    with ctx.unit_of_work() as uow:
        uow.staff_sessions.delete(session_hash)
        if entry is not None:
            uow.audit.add(entry)
        uow.commit()


def _replace(ctx: Context, item: StaffSession, step: SignInStep) -> SignInStep:
    """The pending item is used up: the next stage has its own (a fresh cookie each step)."""
    _end(ctx, item.session_hash)
    return step


def set_new_password(ctx: Context, item: StaffSession, new_password: object, confirmation: object, *,
                     ip: str) -> SignInStep:
    """First sign-in: the password Cognito forces the user to choose."""
    if item.stage != NEW_PASSWORD:
        raise InvalidCredentials(SIGNIN_EXPIRED, code="signin_expired")
    if not isinstance(new_password, str) or not 12 <= len(new_password) <= MAX_PASSWORD:
        raise InvalidInput("La nueva contraseña debe tener de 12 a 256 caracteres.", field="new_password")
    if new_password != confirmation:
        raise InvalidInput("La confirmación no coincide con la nueva contraseña.", field="confirmation")
    try:
        step = directory(ctx).answer(NEW_PASSWORD, item.challenge_session or "",
                                     {"USERNAME": item.username, "NEW_PASSWORD": new_password})
    except CognitoRefusal as exc:
        raise _refusal(ctx, exc, username=item.username, ip=ip) from None
    record(ctx, subject=STAFF_SUBJECT, event="authn_password_change", actor=f"staff:{item.username}",
           ip=ip, reason="first_sign_in")
    return _replace(ctx, item, _advance(ctx, item.username, step, ip=ip))


def submit_code(ctx: Context, item: StaffSession, code: object, *, ip: str) -> SignInStep:
    """The TOTP code: a session (challenge answered), or DONE (set up without a challenge)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code.strip().replace(" ", "")):
        raise InvalidInput("Escriba los 6 dígitos que muestra su aplicación de autenticación.",
                           field="code", code="invalid_code")
    code = code.strip().replace(" ", "")
    dirx = directory(ctx)
    try:
        if item.stage == MFA_CODE:
            step = dirx.answer(MFA_CODE, item.challenge_session or "",
                               {"USERNAME": item.username, "SOFTWARE_TOKEN_MFA_CODE": code})
        elif item.stage == MFA_SETUP:
            session = dirx.verify_token(code, session=item.challenge_session)
            step = dirx.answer(MFA_SETUP, session or item.challenge_session or "",
                               {"USERNAME": item.username})
            if step.access_token:
                dirx.prefer_totp(step.access_token)
        elif item.stage == TOKEN_SETUP:
            dirx.verify_token(code, access_token=item.access_token)
            dirx.prefer_totp(item.access_token or "")
            record(ctx, subject=STAFF_SUBJECT, event="authn_mfa_enrolled", actor=f"staff:{item.username}",
                   ip=ip)
            return _replace(ctx, item, SignInStep("DONE"))
        else:
            raise InvalidCredentials(SIGNIN_EXPIRED, code="signin_expired")
    except CognitoRefusal as exc:
        raise _refusal(ctx, exc, username=item.username, ip=ip) from None
    if step.challenge is not None or not step.access_token:
        return _replace(ctx, item, _advance(ctx, item.username, step, ip=ip))
    if item.stage == MFA_SETUP:
        record(ctx, subject=STAFF_SUBJECT, event="authn_mfa_enrolled", actor=f"staff:{item.username}",
               ip=ip)
    return _replace(ctx, item, _activate(ctx, item.username, ip=ip))


def _activate(ctx: Context, username: str, *, ip: str) -> SignInStep:
    try:
        groups = directory(ctx).groups_of(username)
    except CognitoRefusal as exc:
        raise _refusal(ctx, exc, username=username, ip=ip) from None
    if not groups:
        record(ctx, subject=STAFF_SUBJECT, event="authn_login_fail", actor=f"staff:{username}", ip=ip,
               reason="no_role")
        raise Forbidden(NO_ROLE, code="no_role")
    now = ctx.now()
    token = ctx.token(32)
    expires = now + timedelta(seconds=ctx.settings.staff_session_absolute_seconds)
    with ctx.unit_of_work() as uow:
        uow.staff_sessions.add(StaffSession(
            session_hash=hash_token(token), username=username, stage=ACTIVE, groups=list(groups),
            csrf_token=ctx.token(32), created_at=now, last_seen_at=now, expires_at=expires, ip=ip))
        uow.audit.add(audit_entry(ctx, subject=STAFF_SUBJECT, event="authn_login_success",
                                  actor=f"staff:{username}", ip=ip, groups=",".join(groups)))
        uow.commit()
    log_event("session_created", actor=f"staff:{username}", ip=ip)
    return SignInStep(ACTIVE, token)


def current(ctx: Context, token: str | None) -> StaffSessionView | None:
    """The signed-in staff session for a cookie value (idle 15 min, absolute 8 h), or None."""
    if not token or len(token) > 256:
        return None
    with ctx.unit_of_work() as uow:
        item = uow.staff_sessions.get(hash_token(token))
    if item is None or item.stage != ACTIVE or not item.groups:
        return None
    now = ctx.now()
    idle = timedelta(seconds=ctx.settings.staff_session_idle_seconds)
    ended = item.end_reason(now, idle)
    if ended:
        _end(ctx, item.session_hash, audit_entry(ctx, subject=STAFF_SUBJECT, event="session_expired",
                                                 actor=f"staff:{item.username}", reason=ended))
        return None
    last_seen = item.last_seen_at
    if now - last_seen >= TOUCH_AFTER:
        with ctx.unit_of_work() as uow:
            uow.staff_sessions.touch(item, now)
            try:
                uow.commit()
            except Conflict:
                return None  # ended meanwhile (signed out in another tab, or disabled)
        last_seen = now
    return StaffSessionView(session_hash=item.session_hash, username=item.username,
                            groups=tuple(g for g in item.groups if g in RANKS), csrf_token=item.csrf_token,
                            idle_expires_at=min(last_seen + idle, item.expires_at),
                            expires_at=item.expires_at)


def logout(ctx: Context, session: StaffSessionView, *, ip: str) -> None:
    _end(ctx, session.session_hash, audit_entry(ctx, subject=STAFF_SUBJECT, event="session_expired",
                                                actor=session.actor, ip=ip, reason="logout"))
