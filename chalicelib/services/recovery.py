"""Credential recovery and first access: a temporary key and a link by email, then a new password.

The request answers alike, in the same time, whether or not the document belongs to an active
member with an email (both paths hash a key; the response is padded to a floor). Token (256 bits)
and key are stored hashed, single use, 15 minutes, 5 tries; only the newest request is valid.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeGuard

from chalicelib.adapters.mailer import Email, MailError
from chalicelib.context import Context, Runtime
from chalicelib.domain.errors import Conflict, DomainError, InvalidInput
from chalicelib.domain.lockout import clear_failures
from chalicelib.domain.members import Member, parse_document_number
from chalicelib.domain.passwords import (
    HISTORY_SIZE,
    PasswordPolicy,
    WeakPassword,
    context_words,
    policy_summary,
)
from chalicelib.domain.sessions import Recovery
from chalicelib.observability import log_event
from chalicelib.security.passwords import hash_token
from chalicelib.services import throttle
from chalicelib.services.audit import audit_entry, record
from chalicelib.services.unit_of_work import UnitOfWork, until_committed
from chalicelib.templating import render

KEY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to copy from an email
KEY_LENGTH = 10
TOKEN_BYTES = 32
#: The link token exactly as ``request_recovery`` makes it (``secrets.token_urlsafe(32)``: 43 characters).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
REQUESTS_PER_DOCUMENT_PER_HOUR = 3
#: Decisions a change makes at most when other requests keep changing the member meanwhile.
WRITE_ATTEMPTS = 5
ACCEPTED_MESSAGE = (
    "Si el documento está registrado, enviaremos un mensaje al correo electrónico que la "
    "cooperativa tiene registrado, con una clave temporal y un enlace para crear su contraseña. "
    "Revise también la carpeta de correo no deseado. El enlace vence en 15 minutos."
)
INVALID_RECOVERY = (
    "El enlace o la clave temporal no son válidos o ya vencieron. Solicite uno nuevo en "
    "«¿Olvidó su contraseña?»."
)


class InvalidRecovery(DomainError):
    status = 400
    code = "invalid_recovery"


def password_policy(ctx: Context) -> PasswordPolicy:
    s = ctx.settings
    return PasswordPolicy(context_words=context_words([s.cooperative_short_name, s.cooperative_name]))


def _eligible(member: Member | None) -> TypeGuard[Member]:
    return bool(member and member.status == "ACTIVO" and not member.portal_blocked and member.email)


def request_recovery(ctx: Context, raw_document: object, *, ip: str) -> str:
    """Send a recovery email if the document is an active member's; always the same answer."""
    document_number = parse_document_number(raw_document)
    throttle.check_ip(ctx, "recovery", ip)
    started = Runtime.monotonic()
    key = ctx.random_code(KEY_LENGTH, KEY_ALPHABET)
    key_hash = ctx.hasher.hash(key)  # on every path, so timing does not tell members apart
    under_limit = throttle.allow(ctx, f"doc:recovery:{document_number}",
                                 limit=REQUESTS_PER_DOCUMENT_PER_HOUR, window_seconds=3600)
    token = ctx.token(TOKEN_BYTES)
    token_hash = hash_token(token)

    def attempt(uow: UnitOfWork) -> tuple[Member | None, bool]:
        """The member as read, and whether a request for them is staged (the newest one wins)."""
        member = uow.members.get(document_number)
        if not under_limit or not _eligible(member):
            return member, False
        now = ctx.now()
        expires = now + timedelta(seconds=ctx.settings.recovery_ttl_seconds)
        uow.recoveries.add(Recovery(token_hash=token_hash, document_number=document_number,
                                    key_hash=key_hash, created_at=now, expires_at=expires))
        member.active_recovery = token_hash
        uow.members.update(member)
        uow.audit.add(audit_entry(ctx, subject=document_number, event="authn_token_created", ip=ip,
                                  reason="recovery_requested"))
        return member, True

    try:
        member, issued = until_committed(ctx.unit_of_work, attempt, attempts=WRITE_ATTEMPTS)
        not_sent = "unknown_document" if member is None else "not_eligible"
    except Conflict:  # the member kept changing meanwhile: the same answer (they may ask again)
        member, issued, not_sent = None, False, "conflict"
    if issued and member is not None:
        _email_key(ctx, member, key, token)
    elif not under_limit:
        log_event("excess_rate_limit_exceeded", level=logging.WARNING, action="recovery_document",
                  document_number=document_number, ip=ip, limit=REQUESTS_PER_DOCUMENT_PER_HOUR)
    else:
        log_event("recovery_not_sent", document_number=document_number, ip=ip, reason=not_sent)
    elapsed = Runtime.monotonic() - started
    floor = ctx.settings.recovery_response_floor_ms / 1000
    if elapsed < floor:
        Runtime.sleep(floor - elapsed)
    return ACCEPTED_MESSAGE


def _email_key(ctx: Context, member: Member, key: str, token: str) -> None:
    s = ctx.settings
    link = f"{s.public_base_url}/cambiar-clave?token={token}"
    context = {
        "name": member.full_name,
        "key": key,
        "link": link,
        "minutes": s.recovery_ttl_seconds // 60,
        "max_attempts": s.recovery_max_attempts,
        "policy": policy_summary(s.cooperative_short_name),
        "settings": s,
    }
    _send(ctx, member, "Clave temporal para la Sucursal Virtual", "recovery", context)


def _send(ctx: Context, member: Member, subject: str, template: str, context: dict[str, Any]) -> None:
    try:
        ctx.mailer.send(Email(
            to=member.email or "",
            subject=f"{subject} - {ctx.settings.cooperative_short_name}",
            html=render(f"emails/{template}.html", **context),
            text=render(f"emails/{template}.txt", **context),
        ))
    except MailError as exc:
        log_event("email_failed", document_number=member.document_number, template=template,
                  error=str(exc)[:200])


def is_token(value: object) -> TypeGuard[str]:
    """Whether ``value`` has the exact shape of a link token (checked before it is stored or echoed)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def confirm_recovery(ctx: Context, token: object, temporary_key: object, new_password: object, *,
                     ip: str) -> None:
    """Set a new password with the emailed link token and temporary key; ends every session."""
    if not is_token(token):
        raise InvalidRecovery(INVALID_RECOVERY, field="token")
    if not isinstance(temporary_key, str) or not temporary_key.strip():
        raise InvalidInput("Escriba la clave temporal que recibió por correo.", field="temporary_key")
    if not isinstance(new_password, str) or not new_password:
        raise WeakPassword("Escriba la nueva contraseña.", field="new_password")
    throttle.check_ip(ctx, "recovery", ip)
    token_hash = hash_token(token)
    key = temporary_key.strip().replace(" ", "").replace("-", "").upper()
    s = ctx.settings
    key_checked = False
    new_hashes: dict[str, str] = {}

    def attempt(uow: UnitOfWork) -> Member:
        nonlocal key_checked
        recovery = uow.recoveries.get(token_hash)
        now = ctx.now()
        if recovery is None:
            raise _refused(ip, "unknown_token")
        stale = recovery.stale_reason(now, s.recovery_max_attempts)
        member = None if stale else uow.members.get(recovery.document_number)
        if member is None or member.active_recovery != token_hash:  # or superseded by a newer request
            raise _refused(ip, stale or "superseded", recovery.document_number)
        if not key_checked:
            if len(key) > 64 or not ctx.hasher.verify(key, recovery.key_hash):
                _wrong_key(ctx, uow, recovery, ip=ip)
            key_checked = True
        try:
            password, previous = _acceptable_password(ctx, member, new_password)
        except WeakPassword:
            log_event("authn_password_change_fail", document_number=member.document_number, ip=ip,
                      reason="weak_password")
            raise
        if password not in new_hashes:
            new_hashes[password] = ctx.hasher.hash(password)
        member.password_hash = new_hashes[password]
        member.password_history = previous[: HISTORY_SIZE - 1]
        member.password_changed_at = now
        member.active_recovery = None
        clear_failures(member)
        uow.members.update(member)
        uow.recoveries.mark_used(recovery, now)
        uow.audit.add(audit_entry(ctx, subject=member.document_number, event="authn_password_change",
                                  ip=ip, reason="recovery"))
        return member

    try:
        member = until_committed(ctx.unit_of_work, attempt, attempts=WRITE_ATTEMPTS)
    except Conflict as exc:
        raise _refused(ip, "concurrent_use") from exc
    _after_change(ctx, member, now=ctx.now(), ip=ip, keep_session=None)


def _wrong_key(ctx: Context, uow: UnitOfWork, recovery: Recovery, *, ip: str) -> NoReturn:
    """Spend one try (at once: it counts whatever else happens) and refuse."""
    left = uow.recoveries.count_attempt(recovery, ctx.settings.recovery_max_attempts)
    record(ctx, subject=recovery.document_number, event="authn_password_change_fail", ip=ip,
           reason="wrong_temporary_key")
    if left <= 0:
        raise InvalidRecovery(INVALID_RECOVERY, field="token")
    raise InvalidRecovery(f"La clave temporal no es correcta. Le quedan {left} intentos.",
                          field="temporary_key")


CURRENT_WRONG = "La contraseña actual no es correcta."
CHANGED_MEANWHILE = "Su contraseña cambió mientras tanto. Intente de nuevo."


def change_password(ctx: Context, *, document_number: str, session_hash: str,
                    current_password: object, new_password: object, ip: str) -> None:
    """A signed-in member changes the password: the current one, then the same policy as a
    recovery; every other session ends and an email tells the member."""
    if not isinstance(current_password, str) or not current_password:
        raise InvalidInput("Escriba su contraseña actual.", field="current_password")
    if not isinstance(new_password, str) or not new_password:
        raise WeakPassword("Escriba la nueva contraseña.", field="new_password")
    throttle.check_ip(ctx, "login", ip)
    verified_hash: str | None = None  # the stored hash the current password matched
    new_hashes: dict[str, str] = {}

    def attempt(uow: UnitOfWork) -> Member:
        nonlocal verified_hash
        member = uow.members.get(document_number)
        if member is None or not member.password_hash:
            raise InvalidInput(CURRENT_WRONG, field="current_password")
        if verified_hash is None:
            if len(current_password) > 1024 or not ctx.hasher.verify(current_password,
                                                                      member.password_hash):
                record(ctx, subject=document_number, event="authn_password_change_fail", ip=ip,
                       reason="wrong_current_password")
                raise InvalidInput(CURRENT_WRONG, field="current_password")
            verified_hash = member.password_hash
        elif member.password_hash != verified_hash:
            raise InvalidInput(CHANGED_MEANWHILE, field="current_password")
        password, previous = _acceptable_password(ctx, member, new_password)
        if password not in new_hashes:
            new_hashes[password] = ctx.hasher.hash(password)
        member.password_hash = new_hashes[password]
        member.password_history = previous[: HISTORY_SIZE - 1]
        member.password_changed_at = ctx.now()
        uow.members.update(member)
        uow.audit.add(audit_entry(ctx, subject=document_number, event="authn_password_change", ip=ip,
                                  reason="signed_in"))
        return member

    try:
        member = until_committed(ctx.unit_of_work, attempt, attempts=WRITE_ATTEMPTS)
    except Conflict as exc:
        raise InvalidInput(CHANGED_MEANWHILE, field="current_password") from exc
    _after_change(ctx, member, now=ctx.now(), ip=ip, keep_session=session_hash)


def _after_change(ctx: Context, member: Member, *, now: datetime, ip: str,
                  keep_session: str | None) -> None:
    """End the member's sessions (but ``keep_session``) and send the notice by email."""
    with ctx.unit_of_work() as uow:
        ended = uow.sessions.delete_of_member(member.document_number, keep=keep_session)
    log_event("session_expired", document_number=member.document_number, reason="password_change",
              sessions=ended)
    _send(ctx, member, "Su contraseña fue cambiada", "password_changed",
          {"name": member.full_name, "when": now, "ip": ip, "settings": ctx.settings})


def _refused(ip: str, reason: str, document_number: str | None = None) -> InvalidRecovery:
    """Log a link that cannot change a password (unknown, or a token already revoked: used, expired,
    out of tries, superseded) and return the one refusal every such link gets."""
    event = "authn_password_change_fail" if document_number is None else "authn_token_reuse"
    log_event(event, level=logging.WARNING, document_number=document_number, ip=ip, reason=reason)
    return InvalidRecovery(INVALID_RECOVERY, field="token")


def _acceptable_password(ctx: Context, member: Member, new_password: str) -> tuple[str, list[str]]:
    """The new password if the policy accepts it and it is none of the last ones, with those hashes."""
    password = password_policy(ctx).check(new_password, document_number=member.document_number)
    previous = [h for h in [member.password_hash, *(member.password_history or [])] if h]
    previous = previous[:HISTORY_SIZE]
    if any(ctx.hasher.verify(password, old) for old in previous):
        raise WeakPassword(
            f"La contraseña no cumple la política: no puede repetir ninguna de sus últimas "
            f"{HISTORY_SIZE} contraseñas.",
            field="new_password",
            extra={"reasons": [f"No puede repetir ninguna de sus últimas {HISTORY_SIZE} contraseñas."]},
        )
    return password, previous
