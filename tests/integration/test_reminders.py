"""Reminder emails: before due dates and for payments stuck at the bank, each at most
once, never from a scan, each with an unsubscribe link that works without signing in."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import boto3
import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, Member, ReminderSent
from chalicelib.services import payments, reminders
from tests.conftest import sent_emails
from tests.page_support import FORM, Browser
from tests.payment_support import start

ANA = "1020304050"


def link_of(message) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'href="(http://localhost:8000/avisos/cancelar\?token=[^"]+)"', message.body).group(1)


@pytest.fixture
def owed(ctx, make_member, make_obligation):  # type: ignore[no-untyped-def]
    """Today is 23 Nov 2026 (10:00 in Colombia): Ana owes things due on several days."""
    make_member(ANA)
    make_obligation("APO-1", type="APORTE", due_date="2026-11-26", amount_due=80_000, minimum_amount=80_000,
                    maximum_amount=80_000, product_number="4001020304050", description="Aportes sociales")
    make_obligation("CRE-1", due_date="2026-11-24", amount_due=850_000, description="Crédito cuota 7/36")
    make_obligation("SEG-1", type="CONVENIO", due_date="2026-11-27", amount_due=32_000,  # 4 days: not yet
                    description="Seguro exequial")
    make_obligation("OLD-1", due_date="2026-11-15", description="Cuota vencida")  # overdue: not a reminder
    make_obligation("PAID-1", due_date="2026-11-25", amount_due=0, minimum_amount=0, description="Ya pagada")
    make_obligation("GONE-1", due_date="2026-11-25", status="CLOSED", description="Cerrada")


def test_one_email_per_member_lists_what_falls_due_within_three_days(ctx, owed, dynamo_calls) -> None:  # type: ignore[no-untyped-def]
    report = reminders.send_due_reminders(ctx)
    assert (report.sent, report.failed) == (1, 0)
    (message,) = sent_emails()
    assert message.destinations["ToAddresses"] == ["ana.perez@correo.example"]
    assert message.subject == "Recordatorio: 2 obligaciones por vencer - Coopejemplo"
    for text in ("Hola, Ana María Pérez", "Crédito cuota 7/36", "24 de noviembre de 2026", "(mañana)",
                 "Aportes sociales", "26 de noviembre de 2026", "(en 3 días)", "$ 80.000", "$ 850.000",
                 "$ 930.000", "•••• 4050", "escriba usted mismo"):
        assert text in message.body, text
    assert "Si es su primer ingreso" in message.body  # Ana has not created her password yet
    for absent in ("Seguro exequial", "Cuota vencida", "Ya pagada", "Cerrada", "/ingresar"):
        assert absent not in message.body, absent
    assert "Cancelar los recordatorios" in message.body
    assert "Cancélelos aquí: http://localhost:8000/avisos/cancelar?token=" in message.text
    assert message.header("List-Unsubscribe") == f"<{link_of(message)}>"
    assert message.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    # Today and the next three days: one index query each, never a scan.
    assert "Scan" not in dynamo_calls.operations
    assert dynamo_calls.operations.count("Query") == 4


def test_each_reminder_goes_once_and_a_new_due_date_gets_its_own(ctx, owed, make_obligation, clock) -> None:  # type: ignore[no-untyped-def]
    reminders.send_due_reminders(ctx)
    again = reminders.send_due_reminders(ctx)
    assert (again.sent, again.already_sent) == (0, 2)
    clock.advance(days=1)  # 24 Nov: the insurance now falls within three days
    reminders.send_due_reminders(ctx)
    assert len(sent_emails()) == 2
    assert sent_emails()[-1].subject == "Recordatorio: Seguro exequial vence en 3 días - Coopejemplo"
    make_obligation("APO-1", type="APORTE", due_date="2026-12-26", amount_due=80_000,  # next month's
                    minimum_amount=80_000, maximum_amount=80_000, description="Aportes sociales")
    clock.advance(days=29)  # 23 Dec
    reminders.send_due_reminders(ctx)
    assert "Aportes sociales vence en 3 días" in sent_emails()[-1].subject
    assert ReminderSent.get(f"due#{ANA}#APO-1#2026-11-26").kind == "due"


def test_no_reminder_while_a_payment_is_in_progress(ctx, owed, gateway) -> None:  # type: ignore[no-untyped-def]
    start(ctx, items=[("CRE-1", 850_000)])
    reminders.send_due_reminders(ctx)
    (message,) = sent_emails()
    assert "Aportes sociales vence en 3 días" in message.subject and "Crédito cuota" not in message.body


def test_who_gets_nothing(ctx, make_member, make_obligation) -> None:  # type: ignore[no-untyped-def]
    for number, kwargs in (("111", {"email": None}), ("222", {"status": "INACTIVO"}), ("333", {})):
        make_member(number, **kwargs)
        make_obligation(f"O-{number}", document_number=number, due_date="2026-11-25")
    Member(document_number="333").update(actions=[Member.reminders_opt_out.set(True)])
    make_obligation("O-444", document_number="444", due_date="2026-11-25")  # not a member (any more)
    report = reminders.send_due_reminders(ctx)
    assert (report.sent, report.skipped) == (0, 4)
    assert sent_emails() == []


def test_a_failed_send_is_tried_again_next_run(ctx, owed) -> None:  # type: ignore[no-untyped-def]
    ses = boto3.client("ses", region_name="us-east-1")
    ses.delete_identity(Identity="coopejemplo.example")
    assert reminders.send_due_reminders(ctx).failed == 1
    assert sent_emails() == []
    ses.verify_domain_identity(Domain="coopejemplo.example")
    assert reminders.send_due_reminders(ctx).sent == 1


def test_a_payment_pending_for_two_hours_gets_one_notice(ctx, make_member, make_obligation, gateway,  # type: ignore[no-untyped-def]
                                                         clock) -> None:
    make_member(ANA)
    make_obligation()
    started = start(ctx)
    clock.advance(minutes=119)
    assert reminders.send_pending_reminders(ctx).sent == 0
    clock.advance(minutes=2)
    report = reminders.send_pending_reminders(ctx)
    assert (report.examined, report.sent) == (1, 1)
    (message,) = sent_emails()
    assert message.subject == f"Su pago {started.reference} sigue pendiente en su banco - Coopejemplo"
    for text in ("$ 150.000", "BANCO UNION COLOMBIANO", started.reference,
                 "verifique con su entidad financiera si el débito fue realizado",
                 "23 de noviembre de 2026, 10:00 a. m.", "No hace falta que pague de nuevo"):
        assert text in message.body, text
    assert message.header("List-Unsubscribe")
    clock.advance(minutes=30)
    assert reminders.send_pending_reminders(ctx).already_sent == 1
    assert len(sent_emails()) == 1


def test_no_notice_at_night_nor_for_a_settled_payment(ctx, make_member, make_obligation, gateway,  # type: ignore[no-untyped-def]
                                                      clock) -> None:
    make_member(ANA)
    make_obligation()
    make_obligation("CR-0002", description="Otra cuota")
    first = start(ctx)
    second = start(ctx, items=[("CR-0002", 150_000)], key="key-2")
    payments.apply_gateway_event(ctx, {}, gateway.event(first.reference, "APPROVED", at=clock.now))
    clock.advance(hours=12)  # 22:00 in Colombia
    assert reminders.send_pending_reminders(ctx).quiet_hours is True
    clock.advance(hours=9)  # 7:00
    report = reminders.send_pending_reminders(ctx)
    assert report.sent == 1  # only the one still pending
    assert second.reference in sent_emails()[-1].subject


def test_the_unsubscribe_link_asks_first_then_records_the_choice(client, ctx, owed, clock) -> None:  # type: ignore[no-untyped-def]
    reminders.send_due_reminders(ctx)
    link = link_of(sent_emails()[0]).removeprefix("http://localhost:8000")
    browser = Browser(client)
    page = browser.get(link)  # what a mail scanner's prefetch does: nothing changes
    html = page.body.decode()
    assert page.status_code == 200
    assert "¿Desea dejar de recibir" in html and "•••• 4050" in html and "Ana" not in html
    assert Member.get(ANA).reminders_opt_out is False
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    done = browser.post("/avisos/cancelar", {"token": token, "accion": "cancelar"})
    assert done.status_code == 200 and "no le enviaremos más recordatorios" in done.body.decode()
    assert Member.get(ANA).reminders_opt_out is True
    assert [e.event for e in AuditEvent.query(ANA)].count("reminders_opt_out") == 1

    clock.advance(days=1)
    assert reminders.send_due_reminders(ctx).sent == 0  # the insurance is not announced
    again = browser.post("/avisos/cancelar", {"token": token, "accion": "activar"})
    assert "volverá a recibir" in again.body.decode()
    assert Member.get(ANA).reminders_opt_out is False


def test_one_click_unsubscribe_and_bad_links(client, ctx, owed) -> None:  # type: ignore[no-untyped-def]
    token = reminders.unsubscribe_token(ctx, ANA)
    one_click = client.http.post(f"/avisos/cancelar?{urlencode({'token': token})}", headers=FORM,
                                 body="List-Unsubscribe=One-Click")
    assert one_click.status_code == 200
    assert Member.get(ANA).reminders_opt_out is True
    browser = Browser(client)
    for bad in ("", "nope", token[:-2] + "xx", reminders.unsubscribe_token(ctx, "999")):
        page = browser.get(f"/avisos/cancelar?{urlencode({'token': bad})}")
        assert page.status_code == 400 and "no es válido o venció" in page.body.decode()
        assert browser.post("/avisos/cancelar", {"token": bad}).status_code == 400
    # A link from a different purpose (a login ticket signed with the same key) is refused too.
    ticket = ctx.signer("login-ticket").sign({"d": ANA}, expires_at=int(ctx.now().timestamp()) + 60)
    assert browser.get(f"/avisos/cancelar?{urlencode({'token': ticket})}").status_code == 400


def test_the_schedules_are_registered() -> None:
    from chalice.app import ScheduledEventConfig

    from app import app

    schedules = {s.name: s.schedule_expression.to_string() for s in app.event_sources
                 if isinstance(s, ScheduledEventConfig)}
    assert schedules["remind_due_obligations"] == "cron(0 13 * * ? *)"  # 8:00 in Colombia
    assert schedules["remind_pending_payments"] == "rate(30 minutes)"
