"""Login, recovery and throttling on the fake unit of work (no moto): lockout, races that a
version check turns into a re-read, single-use recovery, fixed-window throttling."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from chalicelib.adapters.mailer import Email
from chalicelib.config import get_settings
from chalicelib.context import Context
from chalicelib.domain.errors import InvalidCredentials, InvalidInput, Throttled
from chalicelib.domain.members import Member
from chalicelib.services import auth, recovery, throttle
from chalicelib.services.recovery import InvalidRecovery
from tests.conftest import FakeClock
from tests.fakes import FakeStore, FakeUnitOfWork

DOC = "1020304050"
PASSWORD = "caballo batería grapa correcta"
WRONG = "frase equivocada larga"
NEW_PASSWORD = "mi nueva frase para la cooperativa"
IP = "203.0.113.7"


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Email] = []

    def send(self, email: Email) -> str:
        self.sent.append(email)
        return f"message-{len(self.sent)}"


def context(units: Callable[[], FakeUnitOfWork]) -> Context:
    ctx = Context(get_settings(), units_of_work=units)
    ctx.mailer = FakeMailer()
    return ctx


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def ctx(store: FakeStore, clock: FakeClock) -> Context:
    return context(store.unit_of_work)


def add_member(ctx: Context, *, password: str | None = PASSWORD) -> None:
    with ctx.unit_of_work() as uow:
        uow.members.add(Member(document_number=DOC, full_name="Ana María Pérez",
                               email="ana.perez@correo.example",
                               password_hash=ctx.hasher.hash(password) if password else None))
        uow.commit()


def stored(store: FakeStore) -> Member:
    member = store.read("members", DOC)
    assert isinstance(member, Member)
    return member


def events(store: FakeStore) -> list[str]:
    """The member's audit events, sorted (entries of one instant have no order)."""
    with store.unit_of_work() as uow:
        return sorted(e.event for e in uow.audit.of(DOC))


def log_in(ctx: Context, password: str = PASSWORD, *, ip: str = IP) -> auth.LoginResult:
    return auth.login(ctx, auth.identify(ctx, DOC, ip=ip), password, ip=ip)


def fails(ctx: Context, password: str = WRONG) -> bool:
    try:
        log_in(ctx, password)
    except InvalidCredentials:
        return True
    return False


def racing(store: FakeStore, rival: Callable[[], object], times: int) -> Callable[[], FakeUnitOfWork]:
    """Units of work whose first ``times`` commits of a member change let ``rival`` commit first
    (another request for the same member, between this one's read and its write)."""
    left = [times]

    class Raced(FakeUnitOfWork):
        def commit(self) -> None:
            if left[0] and any(s.table == "members" for s in self.staged):
                left[0] -= 1
                rival()
            super().commit()

    return lambda: Raced(store)


# --- login ----------------------------------------------------------------------------------------

def test_the_fifth_failure_locks_even_the_right_password_out_until_the_lock_ends(
        ctx: Context, store: FakeStore, clock: FakeClock) -> None:
    add_member(ctx)
    assert all(fails(ctx) for _ in range(5))
    assert stored(store).failed_consecutive == 5 and stored(store).locked_until is not None
    assert fails(ctx, PASSWORD)
    assert stored(store).failed_consecutive == 5  # attempts while locked are not counted
    clock.advance(seconds=61)
    result = log_in(ctx)
    member = stored(store)
    assert result.member_name == "Ana María Pérez"
    assert member.failed_consecutive == 0 and member.locked_until is None
    assert member.failure_window_count == 5  # the hourly cap outlives a success
    assert events(store).count("authn_login_fail") == 4
    assert {"authn_login_lock", "authn_login_fail_max", "authn_login_success"} <= set(events(store))


def test_a_login_opens_a_session_records_the_terms_and_reports_the_previous_one(
        ctx: Context, store: FakeStore, clock: FakeClock) -> None:
    add_member(ctx)
    first = log_in(ctx, ip="10.1.1.1")
    clock.advance(hours=2)
    second = log_in(ctx, ip="10.2.2.2")
    assert (first.previous_login_at, second.previous_login_ip) == (None, "10.1.1.1")
    member = stored(store)
    assert member.terms_version == ctx.settings.terms_version and member.terms_accepted_ip == "10.1.1.1"
    assert events(store).count("terms_accepted") == 1
    view = auth.current_session(ctx, second.session_token)
    assert view is not None and view.document_number == DOC and view.csrf_token == second.csrf_token


def test_a_failure_that_loses_a_race_is_counted_after_a_re_read(store: FakeStore, clock: FakeClock) -> None:
    plain = context(store.unit_of_work)
    add_member(plain)
    ctx = context(racing(store, lambda: fails(plain), times=2))
    assert fails(ctx)
    member = stored(store)
    assert member.failed_consecutive == 3  # two rivals and this one: none lost
    assert events(store) == ["authn_login_fail"] * 3


def test_a_correct_password_that_loses_a_race_still_signs_in(store: FakeStore, clock: FakeClock) -> None:
    plain = context(store.unit_of_work)
    add_member(plain)
    ctx = context(racing(store, lambda: fails(plain), times=1))
    result = log_in(ctx)
    assert auth.current_session(ctx, result.session_token) is not None
    assert stored(store).failed_consecutive == 0
    assert events(store) == ["authn_login_fail", "authn_login_success", "terms_accepted"]  # sorted


def test_a_login_that_keeps_losing_gives_up_with_the_generic_answer(store: FakeStore,
                                                                    clock: FakeClock) -> None:
    plain = context(store.unit_of_work)
    add_member(plain)
    ctx = context(racing(store, lambda: fails(plain), times=auth.LOGIN_ATTEMPTS))
    with pytest.raises(InvalidCredentials) as refused:
        log_in(ctx)
    assert refused.value.message == auth.GENERIC_FAILURE


def test_every_login_path_runs_bcrypt_once_even_after_a_lost_race(
        store: FakeStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known and unknown documents, locked or not, cost the same work (no timing oracle)."""
    plain = context(store.unit_of_work)
    add_member(plain)
    verified: list[str | None] = []
    original = plain.hasher.verify

    def counting(password: str, stored: str | None) -> bool:
        verified.append(stored)
        return original(password, stored)

    ctx = context(racing(store, lambda: fails(plain), times=1))
    monkeypatch.setattr(ctx.hasher, "verify", counting)
    for attempt in (lambda: log_in(ctx, ip="10.0.0.9"), lambda: fails(ctx),
                    lambda: auth.login(ctx, auth.identify(ctx, "99999999", ip=IP), PASSWORD, ip=IP)):
        verified.clear()
        with contextlib.suppress(InvalidCredentials):
            attempt()
        assert len(verified) == 1
    for _ in range(5):
        fails(plain)
    verified.clear()
    assert fails(ctx, PASSWORD)  # locked: verified all the same, not counted
    assert len(verified) == 1


def test_an_unknown_document_is_refused_alike_and_audited(ctx: Context, store: FakeStore) -> None:
    with pytest.raises(InvalidCredentials) as refused:
        log_in(ctx)
    assert refused.value.message == auth.GENERIC_FAILURE
    assert events(store) == ["authn_login_fail"]


def test_sessions_slide_then_end_idle_and_a_logout_ends_them(ctx: Context, store: FakeStore,
                                                            clock: FakeClock) -> None:
    add_member(ctx)
    token = log_in(ctx).session_token
    clock.advance(minutes=9)
    view = auth.current_session(ctx, token)
    assert view is not None and view.idle_expires_at == clock.now + timedelta(minutes=10)
    clock.advance(minutes=10, seconds=1)
    assert auth.current_session(ctx, token) is None
    assert store.tables["sessions"] == {}
    view = auth.current_session(ctx, token := log_in(ctx).session_token)
    assert view is not None
    auth.logout(ctx, view, ip=IP)
    assert auth.current_session(ctx, token) is None
    assert events(store).count("session_expired") == 2


# --- recovery -------------------------------------------------------------------------------------

def emailed(ctx: Context) -> tuple[str, str]:
    """The link token and temporary key of the last recovery email."""
    assert isinstance(ctx.mailer, FakeMailer)
    text = ctx.mailer.sent[-1].text
    token = re.search(r"cambiar-clave\?token=([A-Za-z0-9_\-]+)", text)
    key = re.search(r"clave temporal es: ([A-Z2-9]{10})", text)
    assert token and key
    return token.group(1), key.group(1)


def test_a_recovery_sets_the_password_unlocks_ends_sessions_and_is_single_use(
        ctx: Context, store: FakeStore) -> None:
    add_member(ctx)
    session = log_in(ctx).session_token
    for _ in range(5):
        fails(ctx)
    recovery.request_recovery(ctx, DOC, ip=IP)
    token, key = emailed(ctx)
    recovery.confirm_recovery(ctx, token, key.lower(), NEW_PASSWORD, ip=IP)
    member = stored(store)
    assert member.locked_until is None and member.active_recovery is None
    assert member.password_history and len(member.password_history) == 1
    assert auth.current_session(ctx, session) is None
    assert log_in(ctx, NEW_PASSWORD).member_name == "Ana María Pérez"
    with pytest.raises(InvalidRecovery):
        recovery.confirm_recovery(ctx, token, key, "otra frase distinta y larga", ip=IP)


def test_wrong_keys_spend_the_tries_and_then_void_the_request(ctx: Context) -> None:
    add_member(ctx)
    recovery.request_recovery(ctx, DOC, ip=IP)
    token, key = emailed(ctx)
    messages = []
    for _ in range(ctx.settings.recovery_max_attempts):
        with pytest.raises(InvalidRecovery) as refused:
            recovery.confirm_recovery(ctx, token, "ZZZZZZZZZZ", NEW_PASSWORD, ip=IP)
        messages.append(refused.value.message)
    assert messages[0] == "La clave temporal no es correcta. Le quedan 4 intentos."
    assert messages[-1] == recovery.INVALID_RECOVERY
    with pytest.raises(InvalidRecovery):
        recovery.confirm_recovery(ctx, token, key, NEW_PASSWORD, ip=IP)


def test_only_the_newest_request_counts_and_strangers_get_no_email(ctx: Context,
                                                                   clock: FakeClock) -> None:
    add_member(ctx)
    recovery.request_recovery(ctx, "99999999", ip=IP)
    assert isinstance(ctx.mailer, FakeMailer) and ctx.mailer.sent == []
    recovery.request_recovery(ctx, DOC, ip=IP)
    old_token, old_key = emailed(ctx)
    clock.advance(seconds=30)
    recovery.request_recovery(ctx, DOC, ip=IP)
    with pytest.raises(InvalidRecovery):
        recovery.confirm_recovery(ctx, old_token, old_key, NEW_PASSWORD, ip=IP)
    recovery.confirm_recovery(ctx, *emailed(ctx), NEW_PASSWORD, ip=IP)


def test_a_recovery_that_races_a_failed_login_re_reads_and_keeps_both(store: FakeStore,
                                                                      clock: FakeClock) -> None:
    plain = context(store.unit_of_work)
    add_member(plain)
    recovery.request_recovery(plain, DOC, ip=IP)
    token, key = emailed(plain)
    ctx = context(racing(store, lambda: fails(plain), times=1))
    recovery.confirm_recovery(ctx, token, key, NEW_PASSWORD, ip=IP)
    assert events(store).count("authn_login_fail") == 1
    assert stored(store).failed_consecutive == 0  # the new password clears the rival's failure
    assert log_in(plain, NEW_PASSWORD)


def test_a_recovery_request_that_keeps_losing_answers_alike_and_sends_nothing(
        store: FakeStore, clock: FakeClock) -> None:
    plain = context(store.unit_of_work)
    add_member(plain)
    ctx = context(racing(store, lambda: fails(plain), times=recovery.WRITE_ATTEMPTS))
    assert recovery.request_recovery(ctx, DOC, ip=IP) == recovery.ACCEPTED_MESSAGE
    assert isinstance(ctx.mailer, FakeMailer) and ctx.mailer.sent == []
    assert stored(store).active_recovery is None and store.tables["recoveries"] == {}


def test_a_password_change_needs_the_current_one_and_keeps_only_this_session(
        ctx: Context, store: FakeStore) -> None:
    add_member(ctx)
    other, mine = log_in(ctx).session_token, log_in(ctx)
    view = auth.current_session(ctx, mine.session_token)
    assert view is not None
    with pytest.raises(InvalidInput) as wrong:
        recovery.change_password(ctx, document_number=DOC, session_hash=view.session_hash,
                                 current_password=WRONG, new_password=NEW_PASSWORD, ip=IP)
    assert wrong.value.message == recovery.CURRENT_WRONG
    recovery.change_password(ctx, document_number=DOC, session_hash=view.session_hash,
                             current_password=PASSWORD, new_password=NEW_PASSWORD, ip=IP)
    assert auth.current_session(ctx, other) is None
    assert auth.current_session(ctx, mine.session_token) is not None
    assert {"authn_password_change_fail", "authn_password_change"} <= set(events(store))


# --- throttle -------------------------------------------------------------------------------------

def test_the_throttle_allows_the_limit_per_window_and_key(ctx: Context, clock: FakeClock) -> None:
    window = ctx.settings.rate_window_seconds
    clock.now -= timedelta(seconds=int(clock.now.timestamp()) % window)  # a window's start
    assert [throttle.allow(ctx, "ip:x", limit=3, window_seconds=window) for _ in range(4)] == [
        True, True, True, False]
    assert throttle.allow(ctx, "ip:y", limit=3, window_seconds=window)
    clock.advance(seconds=window)
    assert throttle.allow(ctx, "ip:x", limit=3, window_seconds=window)


def test_check_ip_refuses_in_spanish_once_the_limit_is_used(ctx: Context) -> None:
    for _ in range(ctx.settings.rate_login):
        throttle.check_ip(ctx, "login", IP)
    with pytest.raises(Throttled) as refused:
        throttle.check_ip(ctx, "login", IP)
    assert refused.value.message == throttle.THROTTLED_MESSAGE
