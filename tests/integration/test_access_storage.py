"""The access repositories' contract, held by DynamoDB (moto) and the fakes alike: the conditions
the login, recovery, throttle and staff sign-in rely on, and the login's round trips."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.domain.errors import Conflict, InvalidCredentials
from chalicelib.domain.sessions import Recovery, Session, StaffSession
from chalicelib.services.unit_of_work import UnitOfWork
from tests.payment_support import DynamoCalls

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
LATER = AT + timedelta(minutes=5)
DOC = "1020304050"
PASSWORD = "caballo batería grapa correcta"


def session(session_hash: str = "h1", document_number: str = DOC) -> Session:
    return Session(session_hash=session_hash, document_number=document_number, csrf_token="c" * 43,
                   created_at=AT, last_seen_at=AT, expires_at=AT + timedelta(hours=1), ip="10.0.0.1")


def staff_session(session_hash: str = "s1", username: str = "tesoreria") -> StaffSession:
    return StaffSession(session_hash=session_hash, username=username, stage="ACTIVE",
                        csrf_token="c" * 43, created_at=AT, last_seen_at=AT,
                        expires_at=AT + timedelta(hours=8), groups=["tesoreria"], ip="10.0.0.1")


def recovery_request(token_hash: str = "t1") -> Recovery:
    return Recovery(token_hash=token_hash, document_number=DOC, key_hash="k" * 60, created_at=AT,
                    expires_at=AT + timedelta(minutes=15))


# --- member sessions ------------------------------------------------------------------------------

def test_a_session_round_trips_and_slides_while_it_exists(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.sessions.add(session())
        uow.commit()
    with units() as uow:
        stored = uow.sessions.get("h1")
        assert stored == session()
        uow.sessions.touch(stored, LATER)
        uow.commit()
    with units() as uow:
        touched = uow.sessions.get("h1")
        assert touched is not None and touched.last_seen_at == LATER
        assert uow.sessions.get("nobody") is None


def test_touching_an_ended_session_is_a_conflict_and_creates_nothing(
        units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.sessions.add(session())
        uow.commit()
    with units() as reader, units() as ender:
        read = reader.sessions.get("h1")
        assert read is not None
        ender.sessions.delete("h1")
        ender.commit()
        reader.sessions.touch(read, LATER)
        with pytest.raises(Conflict) as raised:
            reader.commit()
    assert raised.value.changed == {"session"}
    with units() as uow:
        assert uow.sessions.get("h1") is None


def test_ending_a_members_sessions_keeps_the_one_asked_and_others_members(
        units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        for name in ("h1", "h2", "h3"):
            uow.sessions.add(session(name))
        uow.sessions.add(session("other", document_number="99999999"))
        uow.commit()
    with units() as uow:
        assert uow.sessions.delete_of_member(DOC, keep="h2") == 2  # at once: no commit needed
    with units() as uow:
        assert [uow.sessions.get(h) is not None for h in ("h1", "h2", "h3", "other")] == [
            False, True, False, True]


# --- recoveries -----------------------------------------------------------------------------------

def test_a_recovery_is_spent_once(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.recoveries.add(recovery_request())
        uow.commit()
    with units() as first, units() as second:
        mine, theirs = first.recoveries.get("t1"), second.recoveries.get("t1")
        assert mine == recovery_request() and theirs is not None
        first.recoveries.mark_used(mine, LATER)
        first.commit()
        second.recoveries.mark_used(theirs, LATER)
        with pytest.raises(Conflict) as raised:
            second.commit()
    assert raised.value.changed == {"recovery"}
    with units() as uow:
        used = uow.recoveries.get("t1")
        assert used is not None and used.used_at == LATER


def test_a_recovery_that_does_not_exist_cannot_be_spent(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.recoveries.mark_used(recovery_request("gone"), LATER)
        with pytest.raises(Conflict):
            uow.commit()
    with units() as uow:
        assert uow.recoveries.get("gone") is None


def test_counting_attempts_stops_at_the_maximum_at_once(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.recoveries.add(recovery_request())
        uow.commit()
    with units() as uow:
        read = uow.recoveries.get("t1")
        assert read is not None
        assert [uow.recoveries.count_attempt(read, 3) for _ in range(4)] == [2, 1, 0, 0]
        assert read.attempts == 3
    with units() as uow:
        stored = uow.recoveries.get("t1")
        assert stored is not None and stored.attempts == 3
        assert uow.recoveries.count_attempt(recovery_request("gone"), 3) == 0
        assert uow.recoveries.get("gone") is None


# --- rate counters --------------------------------------------------------------------------------

def test_a_rate_counter_allows_the_limit_then_refuses_per_key(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        assert [uow.rate_counters.hit("ip:login:1:7", limit=2, expires_at=LATER)
                for _ in range(3)] == [True, True, False]
        assert uow.rate_counters.hit("ip:login:2:7", limit=2, expires_at=LATER)
    with units() as uow:  # counted at once, without a commit
        assert not uow.rate_counters.hit("ip:login:1:7", limit=2, expires_at=LATER)


def test_a_refused_hit_is_not_counted(aws: None) -> None:
    with DynamoUnitOfWork() as uow:
        for _ in range(5):
            uow.rate_counters.hit("k", limit=2, expires_at=LATER)
    assert models.RateCounter.get("k").hits == 2


# --- staff sessions -------------------------------------------------------------------------------

def test_a_staff_session_round_trips_slides_and_ends(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.staff_sessions.add(staff_session())
        uow.staff_sessions.add(staff_session("s2"))
        uow.staff_sessions.add(staff_session("s3", username="consulta"))
        uow.commit()
    with units() as uow:
        stored = uow.staff_sessions.get("s1")
        assert stored == staff_session()
        uow.staff_sessions.touch(stored, LATER)
        uow.staff_sessions.delete("s2")
        uow.commit()
    with units() as uow:
        touched = uow.staff_sessions.get("s1")
        assert touched is not None and touched.last_seen_at == LATER
        assert uow.staff_sessions.get("s2") is None
        assert uow.staff_sessions.delete_of_user("tesoreria") == 1
    with units() as uow:
        assert uow.staff_sessions.get("s1") is None and uow.staff_sessions.get("s3") is not None


def test_touching_an_ended_staff_session_is_a_conflict(units: Callable[[], UnitOfWork]) -> None:
    with units() as uow:
        uow.staff_sessions.touch(staff_session("gone"), LATER)
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {"staff_session"}
    with units() as uow:
        assert uow.staff_sessions.get("gone") is None


# --- the login on DynamoDB ------------------------------------------------------------------------

def test_identify_takes_one_round_trip_and_every_login_three(  # type: ignore[no-untyped-def]
        ctx, make_member, dynamo_calls: DynamoCalls) -> None:
    from chalicelib.services import auth

    make_member(DOC, password=PASSWORD)
    for document, password in ((DOC, PASSWORD), (DOC, "frase equivocada larga"),
                               ("99999999", PASSWORD)):
        dynamo_calls.reset()
        ticket = auth.identify(ctx, document, ip="10.0.0.1")
        assert dynamo_calls.operations == ["UpdateItem"]  # the per-IP throttle
        dynamo_calls.reset()
        with contextlib.suppress(InvalidCredentials):
            auth.login(ctx, ticket, password, ip="10.0.0.1")
        assert dynamo_calls.operations == ["UpdateItem", "GetItem", "TransactWriteItems"], document


def test_concurrent_failed_logins_each_count(ctx, make_member) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.services import auth

    make_member(DOC, password=PASSWORD)
    tickets = [auth.identify(ctx, DOC, ip=f"10.0.0.{n}") for n in range(4)]
    start = threading.Barrier(len(tickets))
    refused: list[int] = []

    def guess(n: int) -> None:
        start.wait()
        try:
            auth.login(ctx, tickets[n], "frase equivocada larga", ip=f"10.0.0.{n}")
        except InvalidCredentials:
            refused.append(n)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(len(tickets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(refused) == list(range(len(tickets)))
    assert models.Member.get(DOC).failed_consecutive == len(tickets)
    events = [e.event for e in models.AuditEvent.query(DOC)]
    assert events.count("authn_login_fail") == len(tickets)


# --- members: an update writes what changed -------------------------------------------------------

def test_an_update_keeps_what_an_unversioned_writer_changed_meanwhile(aws: None) -> None:
    from chalicelib.domain.members import Member

    with DynamoUnitOfWork() as uow:
        uow.members.add(Member(document_number=DOC, full_name="María"))
        uow.commit()
    with DynamoUnitOfWork() as uow:
        member = uow.members.get(DOC)
        assert member is not None
        models.Member(document_number=DOC).update(actions=[models.Member.portal_blocked.set(True)])
        member.failed_consecutive, member.locked_until = 1, None
        uow.members.update(member)
        uow.commit()
    assert member.version == 2
    stored = models.Member.get(DOC)
    assert stored.portal_blocked and stored.failed_consecutive == 1 and stored.version == 2


def test_an_update_removes_what_became_none_and_still_checks_the_version(aws: None) -> None:
    from chalicelib.domain.members import Member

    with DynamoUnitOfWork() as uow:
        uow.members.add(Member(document_number=DOC, full_name="María", locked_until=AT,
                               password_history=["h1"]))
        uow.commit()
    with DynamoUnitOfWork() as first, DynamoUnitOfWork() as second:
        mine, theirs = first.members.get(DOC), second.members.get(DOC)
        assert mine is not None and theirs is not None
        mine.locked_until, mine.password_history = None, ["h2", "h1"]
        first.members.update(mine)
        first.commit()
        theirs.email = "otra@correo.example"
        second.members.update(theirs)
        with pytest.raises(Conflict) as raised:
            second.commit()
    assert raised.value.changed == {f"member:{DOC}"}
    stored = models.Member.get(DOC)
    assert stored.locked_until is None and stored.password_history == ["h2", "h1"]
    assert stored.email is None and stored.version == 2
