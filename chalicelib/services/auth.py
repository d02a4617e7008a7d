"""Staged login (document, then password), sessions and logout.

No account enumeration: step 1 answers alike for any well-formed document and reads nothing; step 2
runs bcrypt for every request (a dummy hash when there is no member) and answers every failure with
one message. Round trips: identify 1 (IP throttle); login 3 (throttle, member, one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.context import Context
from chalicelib.domain.errors import Conflict, InvalidCredentials, InvalidInput
from chalicelib.domain.lockout import (
    LockoutPolicy,
    clear_failures,
    failure_state,
    record_failure_state,
)
from chalicelib.domain.members import Member, mask_email, parse_document_number
from chalicelib.domain.sessions import Session
from chalicelib.observability import log_event
from chalicelib.security.passwords import hash_token
from chalicelib.security.signing import BadSignature
from chalicelib.services import throttle
from chalicelib.services.audit import audit_entry
from chalicelib.services.unit_of_work import UnitOfWork, until_committed

GENERIC_FAILURE = (
    "Documento o contraseña incorrectos. Si es su primer ingreso o olvidó su contraseña, use "
    "«¿Olvidó su contraseña?». Por seguridad, después de varios intentos fallidos el acceso se "
    "bloquea temporalmente."
)
TICKET_EXPIRED = "El tiempo para escribir la contraseña terminó. Escriba de nuevo su número de documento."
MAX_PASSWORD_INPUT = 1024  # far above the policy's 128 characters; bounds the work per request
#: Decisions a login makes at most when other requests keep changing the member meanwhile.
LOGIN_ATTEMPTS = 5
TOUCH_AFTER = timedelta(seconds=30)  # a session's idle timeout slides at most this often


@dataclass(frozen=True)
class LoginResult:
    session_token: str
    csrf_token: str
    member_name: str
    previous_login_at: datetime | None
    previous_login_ip: str | None


@dataclass(frozen=True)
class SessionView:
    session_hash: str
    document_number: str
    csrf_token: str
    idle_expires_at: datetime
    expires_at: datetime


def lockout_policy(ctx: Context) -> LockoutPolicy:
    s = ctx.settings
    return LockoutPolicy(
        threshold=s.lockout_threshold,
        base=timedelta(seconds=s.lockout_base_seconds),
        maximum=timedelta(seconds=s.lockout_max_seconds),
        max_per_hour=s.max_failures_per_hour,
    )


def identify(ctx: Context, raw_document: object, *, ip: str) -> str:
    """Step 1: a signed, short-lived login ticket for any well-formed document number."""
    document_number = parse_document_number(raw_document)
    throttle.check_ip(ctx, "identify", ip)
    expires = int(ctx.now().timestamp()) + ctx.settings.login_ticket_seconds
    return ctx.signer("login-ticket").sign({"d": document_number, "n": ctx.token(8)}, expires_at=expires)


def _ticket_document(ctx: Context, ticket: object) -> str:
    try:
        payload = ctx.signer("login-ticket").unsign(ticket, now=int(ctx.now().timestamp()))
    except BadSignature as exc:
        raise InvalidCredentials(TICKET_EXPIRED, code="invalid_credentials") from exc
    document = payload.get("d")
    if not isinstance(document, str):
        raise InvalidCredentials(TICKET_EXPIRED)
    return document


def ticket_document(ctx: Context, ticket: object) -> str | None:
    """The document a live login ticket carries (what the member typed at step 1), else None."""
    try:
        return _ticket_document(ctx, ticket)
    except InvalidCredentials:
        return None


def _can_sign_in(member: Member) -> bool:
    return bool(member.status == "ACTIVO" and not member.portal_blocked and member.password_hash)


def login(ctx: Context, ticket: object, password: object, *, ip: str) -> LoginResult:
    """Step 2: verify the password; on success a new server-side session.

    Every outcome is one version-checked write of the member (or an audit entry alone): when two
    requests for one member race, the loser reads the member again and decides again, so no
    failure goes uncounted and a lock is never skipped."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("Ingrese su contraseña.", field="password")
    if len(password) > MAX_PASSWORD_INPUT:
        raise InvalidCredentials(GENERIC_FAILURE)
    throttle.check_ip(ctx, "login", ip)
    document_number = _ticket_document(ctx, ticket)
    verdicts: dict[str | None, bool] = {}

    def verified(stored_hash: str | None) -> bool:
        """bcrypt on every path (a dummy hash without a member), once per stored hash."""
        if stored_hash not in verdicts:
            verdicts[stored_hash] = ctx.hasher.verify(password, stored_hash)
        return verdicts[stored_hash]

    def attempt(uow: UnitOfWork) -> LoginResult | None:
        member = uow.members.get(document_number)
        now = ctx.now()
        correct = verified(member.password_hash if member else None)
        if member is None:
            uow.audit.add(audit_entry(ctx, subject=document_number, event="authn_login_fail", ip=ip,
                                      reason="unknown_document"))
        elif failure_state(member).is_locked(now):
            # Not verified nor counted while locked: the lock is not extended (lockout DoS).
            uow.audit.add(audit_entry(ctx, subject=document_number, event="authn_login_fail_max",
                                      ip=ip, reason="locked"))
        elif correct and _can_sign_in(member):
            return _sign_in(ctx, uow, member, ip=ip, now=now)
        else:
            _record_failure(ctx, uow, member, ip=ip, now=now,
                            reason="wrong_password" if not correct else f"status_{member.status}")
        return None

    try:
        result = until_committed(ctx.unit_of_work, attempt, attempts=LOGIN_ATTEMPTS)
    except Conflict:
        result = None
    if result is None:
        raise InvalidCredentials(GENERIC_FAILURE)
    log_event("session_created", document_number=document_number, ip=ip)
    return result


def _record_failure(ctx: Context, uow: UnitOfWork, member: Member, *, ip: str, now: datetime,
                    reason: str) -> None:
    after = lockout_policy(ctx).after_failure(failure_state(member), now)
    record_failure_state(member, after)
    event = "authn_login_lock" if after.is_locked(now) else "authn_login_fail"
    uow.members.update(member)
    uow.audit.add(audit_entry(ctx, subject=member.document_number, event=event, ip=ip, reason=reason,
                              consecutive=after.consecutive))


def _sign_in(ctx: Context, uow: UnitOfWork, member: Member, *, ip: str, now: datetime) -> LoginResult:
    s = ctx.settings
    token = ctx.token(32)
    csrf = ctx.token(32)
    previous_at, previous_ip = member.last_login_at, member.last_login_ip
    uow.sessions.add(Session(
        session_hash=hash_token(token),
        document_number=member.document_number,
        csrf_token=csrf,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=s.session_absolute_seconds),
        ip=ip,
    ))
    clear_failures(member)
    if previous_at:
        member.previous_login_at, member.previous_login_ip = previous_at, previous_ip or ""
    member.last_login_at, member.last_login_ip = now, ip
    uow.audit.add(audit_entry(ctx, subject=member.document_number, event="authn_login_success", ip=ip))
    if member.terms_version != s.terms_version:
        # Entering means accepting the terms (seed notice): keep version, time and IP as proof.
        member.terms_version, member.terms_accepted_at, member.terms_accepted_ip = s.terms_version, now, ip
        uow.audit.add(audit_entry(ctx, subject=member.document_number, event="terms_accepted", ip=ip,
                                  terms_version=s.terms_version))
    uow.members.update(member)
    return LoginResult(
        session_token=token,
        csrf_token=csrf,
        member_name=member.full_name,
        previous_login_at=previous_at,
        previous_login_ip=previous_ip,
    )


def current_session(ctx: Context, token: str | None) -> SessionView | None:
    """The live session for a cookie value, or None; slides the idle timeout (one read, rare writes)."""
    if not token or len(token) > 256:
        return None
    session_hash = hash_token(token)
    with ctx.unit_of_work() as uow:
        session = uow.sessions.get(session_hash)
        if session is None:
            return None
        now = ctx.now()
        idle = timedelta(seconds=ctx.settings.session_idle_seconds)
        ended = session.end_reason(now, idle)
        if ended:
            uow.sessions.delete(session_hash)
            uow.audit.add(audit_entry(ctx, subject=session.document_number, event="session_expired",
                                      reason=ended))
            uow.commit()
            return None
        last_seen = session.last_seen_at
        if now - last_seen >= TOUCH_AFTER:
            uow.sessions.touch(session, now)
            try:
                uow.commit()
            except Conflict:
                return None  # ended meanwhile (a logout in another tab)
            last_seen = now
    return SessionView(
        session_hash=session_hash,
        document_number=session.document_number,
        csrf_token=session.csrf_token,
        idle_expires_at=min(last_seen + idle, session.expires_at),
        expires_at=session.expires_at,
    )


def logout(ctx: Context, session: SessionView, *, ip: str) -> None:
    with ctx.unit_of_work() as uow:
        uow.sessions.delete(session.session_hash)
        uow.audit.add(audit_entry(ctx, subject=session.document_number, event="session_expired", ip=ip,
                                  reason="logout"))
        uow.commit()


@dataclass(frozen=True)
class MemberSummary:
    document_type: str
    document_number: str
    name: str
    email_hint: str
    last_login_at: datetime | None
    last_login_ip: str | None
    previous_login_at: datetime | None
    previous_login_ip: str | None


def member_summary(ctx: Context, session: SessionView) -> MemberSummary:
    with ctx.unit_of_work() as uow:
        member = uow.members.get(session.document_number)
    if member is None:
        raise InvalidCredentials(GENERIC_FAILURE)
    return MemberSummary(
        document_type=member.document_type,
        document_number=member.document_number,
        name=member.full_name,
        email_hint=mask_email(member.email),
        last_login_at=member.last_login_at,
        last_login_ip=member.last_login_ip,
        previous_login_at=member.previous_login_at,
        previous_login_ip=member.previous_login_ip,
    )
