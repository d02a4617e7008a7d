"""Staged login (document, then password), sessions and logout.

No account enumeration: step 1 answers alike for any well-formed document and reads nothing; step 2
runs bcrypt for every request (a dummy hash when there is no member) and answers every failure with
one message. Round trips: identify 1 (IP throttle); login 3 (throttle, member, one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.dynamo import repositories as repo
from chalicelib.adapters.dynamo.models import Member, Session
from chalicelib.context import Context
from chalicelib.domain.errors import InvalidCredentials, InvalidInput
from chalicelib.domain.lockout import FailureState, LockoutPolicy
from chalicelib.domain.members import mask_email, parse_document_number
from chalicelib.observability import log_event
from chalicelib.security.passwords import hash_token
from chalicelib.security.signing import BadSignature
from chalicelib.services import throttle
from chalicelib.services.audit import audit_item

GENERIC_FAILURE = (
    "Documento o contraseña incorrectos. Si es su primer ingreso o olvidó su contraseña, use "
    "«¿Olvidó su contraseña?». Por seguridad, después de varios intentos fallidos el acceso se "
    "bloquea temporalmente."
)
TICKET_EXPIRED = "El tiempo para escribir la contraseña terminó. Escriba de nuevo su número de documento."
MAX_PASSWORD_INPUT = 1024  # far above the policy's 128 characters; bounds the work per request
_MAX_RACE_RETRIES = 3


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


def _failure_state(member: Member) -> FailureState:
    return FailureState(
        consecutive=member.failed_consecutive or 0,
        locked_until=member.locked_until,
        window_start=member.failure_window_start,
        window_failures=member.failure_window_count or 0,
    )


def _can_sign_in(member: Member | None) -> bool:
    return bool(member and member.status == "ACTIVO" and not member.portal_blocked
                and member.password_hash)


def login(ctx: Context, ticket: object, password: object, *, ip: str) -> LoginResult:
    """Step 2: verify the password; on success a new server-side session."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("Ingrese su contraseña.", field="password")
    if len(password) > MAX_PASSWORD_INPUT:
        raise InvalidCredentials(GENERIC_FAILURE)
    throttle.check_ip(ctx, "login", ip)
    document_number = _ticket_document(ctx, ticket)
    for _ in range(_MAX_RACE_RETRIES):
        member = repo.get_member(document_number)
        now = ctx.now()
        verified = ctx.hasher.verify(password, member.password_hash if member else None)
        try:
            if member is None:
                audit_item(ctx, subject=document_number, event="authn_login_fail", ip=ip,
                           reason="unknown_document").save()
            elif _failure_state(member).is_locked(now):
                # Not verified nor counted while locked: the lock is not extended (lockout DoS).
                audit_item(ctx, subject=document_number, event="authn_login_fail_max", ip=ip,
                           reason="locked").save()
            elif verified and _can_sign_in(member):
                return _sign_in(ctx, member, ip=ip, now=now)
            else:
                _record_failure(ctx, member, ip=ip, now=now,
                                reason="wrong_password" if not verified else f"status_{member.status}")
        except repo.ConcurrentUpdate:
            continue
        raise InvalidCredentials(GENERIC_FAILURE)
    raise InvalidCredentials(GENERIC_FAILURE)


def _record_failure(ctx: Context, member: Member, *, ip: str, now: datetime, reason: str) -> None:
    before = _failure_state(member)
    after = lockout_policy(ctx).after_failure(before, now)
    locked_now = after.is_locked(now)
    event = "authn_login_lock" if locked_now else "authn_login_fail"
    audit = audit_item(ctx, subject=member.document_number, event=event, ip=ip, reason=reason,
                       consecutive=after.consecutive)
    repo.transact(
        updates=[(
            member,
            [
                Member.failed_consecutive.set(after.consecutive),
                Member.locked_until.set(after.locked_until) if after.locked_until
                else Member.locked_until.remove(),
                Member.failure_window_start.set(after.window_start),
                Member.failure_window_count.set(after.window_failures),
            ],
            # Concurrent guesses must not share one count.
            Member.failed_consecutive == before.consecutive
            if member.failed_consecutive is not None else Member.failed_consecutive.does_not_exist(),
        )],
        saves=[audit],
    )


def _sign_in(ctx: Context, member: Member, *, ip: str, now: datetime) -> LoginResult:
    s = ctx.settings
    token = ctx.token(32)
    csrf = ctx.token(32)
    expires = now + timedelta(seconds=s.session_absolute_seconds)
    session = Session(
        session_hash=hash_token(token),
        document_number=member.document_number,
        csrf_token=csrf,
        created_at=now,
        last_seen_at=now,
        expires_at=expires,
        ip=ip,
        ttl=expires,
    )
    actions = [
        Member.failed_consecutive.set(0),
        Member.locked_until.remove(),
        Member.last_login_at.set(now),
        Member.last_login_ip.set(ip),
    ]
    if member.last_login_at:
        actions += [Member.previous_login_at.set(member.last_login_at),
                    Member.previous_login_ip.set(member.last_login_ip or "")]
    audits = [audit_item(ctx, subject=member.document_number, event="authn_login_success", ip=ip)]
    if member.terms_version != s.terms_version:
        # Entering means accepting the terms (seed notice): keep version, time and IP as proof.
        actions += [Member.terms_version.set(s.terms_version), Member.terms_accepted_at.set(now),
                    Member.terms_accepted_ip.set(ip)]
        audits.append(audit_item(ctx, subject=member.document_number, event="terms_accepted", ip=ip,
                                 terms_version=s.terms_version))
    repo.transact(updates=[(member, actions, None)], saves=[session, *audits])
    log_event("session_created", document_number=member.document_number, ip=ip)
    return LoginResult(
        session_token=token,
        csrf_token=csrf,
        member_name=member.full_name,
        previous_login_at=member.last_login_at,
        previous_login_ip=member.last_login_ip,
    )


def current_session(ctx: Context, token: str | None) -> SessionView | None:
    """The live session for a cookie value, or None; slides the idle timeout (one read, rare writes)."""
    if not token or len(token) > 256:
        return None
    session_hash = hash_token(token)
    session = repo.get_session(session_hash)
    if session is None:
        return None
    now = ctx.now()
    idle = timedelta(seconds=ctx.settings.session_idle_seconds)
    if now >= session.expires_at or now >= session.last_seen_at + idle:
        repo.delete_session(session_hash)
        audit_item(ctx, subject=session.document_number, event="session_expired",
                   reason="absolute" if now >= session.expires_at else "idle").save()
        return None
    last_seen = session.last_seen_at
    if now - last_seen >= timedelta(seconds=30):
        repo.touch_session(session, now)
        last_seen = now
    return SessionView(
        session_hash=session_hash,
        document_number=session.document_number,
        csrf_token=session.csrf_token,
        idle_expires_at=min(last_seen + idle, session.expires_at),
        expires_at=session.expires_at,
    )


def logout(ctx: Context, session: SessionView, *, ip: str) -> None:
    repo.delete_session(session.session_hash)
    audit_item(ctx, subject=session.document_number, event="session_expired", ip=ip, reason="logout").save()


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


def member_summary(session: SessionView) -> MemberSummary:
    member = repo.get_member(session.document_number)
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
