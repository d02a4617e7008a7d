"""The staff API through chalice's test client in the local stage (X-Api-Key)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, Member, Session
from chalicelib.domain.payments import EXPORT_READY, LATE_APPROVAL
from chalicelib.services import payments
from tests.backoffice_support import approved_payment, parse_csv, s3_objects
from tests.conftest import sent_emails
from tests.payment_support import assert_error, get_obligation, get_payment, start

KEY = "local-staff-key"  # STAFF_API_KEY of the local stage (.chalice/config.json)
PASSWORD = "caballo bateria grapa correcta"
JSON = {"Content-Type": "application/json"}
ANA = "1020304050"


def call(client, method: str, path: str, body: Any = None, *, key: str | None = KEY,  # type: ignore[no-untyped-def]
         user: str | None = "ana", raw: bytes | None = None):
    headers = dict(JSON)
    if key is not None:
        headers["X-Api-Key"] = key
    if user is not None:  # a header naming someone: ignored, the audit names the key or a session
        headers["X-Staff-User"] = user
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return getattr(client.http, method.lower())(path, headers=headers, body=payload)


def get(client, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    return call(client, "GET", path, **kwargs)


def post(client, path: str, body: Any = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    return call(client, "POST", path, body, **kwargs)


def audit_of(document: str) -> list[AuditEvent]:
    return list(AuditEvent.query(document, scan_index_forward=False))


@pytest.fixture
def ana(make_member):  # type: ignore[no-untyped-def]
    return make_member(ANA, password=PASSWORD)


@pytest.fixture
def pending(ctx, ana, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    return start(ctx)


# --- authentication ---------------------------------------------------------------------------------

STAFF_ROUTES = [
    ("GET", "/staff/v1/payments?status=APPROVED"),
    ("GET", "/staff/v1/payments/AAAAAAAAAAAAAAAAAAAAAA"),
    ("POST", "/staff/v1/payments/AAAAAAAAAAAAAAAAAAAAAA/requery"),
    ("POST", "/staff/v1/payments/AAAAAAAAAAAAAAAAAAAAAA/resend-receipt"),
    ("GET", "/staff/v1/review"),
    ("POST", "/staff/v1/review/AAAAAAAAAAAAAAAAAAAAAA/resolve"),
    ("GET", "/staff/v1/members/1020304050/audit"),
    ("POST", "/staff/v1/members/1020304050/block"),
    ("POST", "/staff/v1/members/1020304050/unblock"),
    ("POST", "/staff/v1/exports"),
    ("GET", "/staff/v1/exports/20261123-100000-abcdef"),
]


@pytest.mark.parametrize(("method", "path"), STAFF_ROUTES)
def test_every_staff_route_needs_the_api_key(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    assert_error(call(client, method, path, key=None), 401, "invalid_api_key")
    assert_error(call(client, method, path, key="local-staff-key-wrong"), 401, "invalid_api_key")
    assert_error(call(client, method, path, key=""), 401, "invalid_api_key")
    assert call(client, method, path, {"reason": "x"}).status_code != 401


def test_the_right_key_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    response = get(client, "/staff/v1/review")
    assert response.status_code == 200 and response.json_body == {"payments": [], "next_cursor": None}
    assert response.headers["Content-Type"].startswith("application/json")


def test_every_staff_route_has_the_iam_authorizer_in_aws() -> None:
    from chalice import IAMAuthorizer

    from app import app

    staff = {path: methods for path, methods in app.routes.items() if path.startswith("/staff/")}
    assert len(staff) == 11
    for path, methods in staff.items():
        for method, entry in methods.items():
            assert isinstance(entry.authorizer, IAMAuthorizer), (path, method)


def test_in_aws_the_staff_identity_is_the_iam_user_arn(ctx) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.context import Context
    from chalicelib.domain.errors import Unauthenticated
    from chalicelib.web.staff_api import staff_actor

    aws = Context(replace(ctx.settings, staff_api_key_required=False))
    arn = "arn:aws:iam::123456789012:user/ana.tesoreria"
    signed = SimpleNamespace(headers={}, path="/staff/v1/review",
                             context={"identity": {"userArn": arn, "sourceIp": "10.0.0.1"}})
    assert staff_actor(signed, aws) == f"staff:{arn}"  # type: ignore[arg-type]
    unsigned = SimpleNamespace(headers={"x-api-key": KEY}, path="/staff/v1/review", context={"identity": {}})
    with pytest.raises(Unauthenticated):
        staff_actor(unsigned, aws)  # type: ignore[arg-type]


# --- searching payments -------------------------------------------------------------------------------

def test_search_by_reference_and_cus(client, ctx, pending, gateway) -> None:  # type: ignore[no-untyped-def]
    payment = get_payment(pending.id)
    found = get(client, f"/staff/v1/payments?reference={payment.reference.lower()}").json_body
    assert [p["id"] for p in found["payments"]] == [pending.id] and found["next_cursor"] is None
    summary = found["payments"][0]
    assert summary["document_number"] == ANA and summary["status"] == "PENDING"
    assert summary["export"] == {"export_id": None, "exported_at": None, "pending": False,
                                 "applied_in_core_at": None}
    found = get(client, f"/staff/v1/payments?cus={payment.cus}").json_body["payments"]
    assert [p["id"] for p in found] == [pending.id]
    # Other filters narrow an exact search.
    assert get(client, f"/staff/v1/payments?cus={payment.cus}&status=APPROVED").json_body["payments"] == []
    assert get(client, "/staff/v1/payments?reference=SVAAAAAAAAAAAA").json_body["payments"] == []


def test_search_by_document_newest_first_with_a_status(  # type: ignore[no-untyped-def]
        client, ctx, ana, make_obligation, gateway, clock) -> None:
    for n in range(3):
        make_obligation(f"CR-000{n}")
        started = start(ctx, items=[(f"CR-000{n}", 150_000)], key=f"k{n}")
        if n == 1:
            gateway.settle(started.reference, "APPROVED")
            payments.refresh_payment(ctx, started.id)
        clock.advance(minutes=1)
    listed = get(client, f"/staff/v1/payments?document={ANA}").json_body["payments"]
    assert len(listed) == 3
    assert [p["created_at"] for p in listed] == sorted((p["created_at"] for p in listed), reverse=True)
    approved = get(client, f"/staff/v1/payments?document={ANA}&status=approved").json_body["payments"]
    assert [p["status"] for p in approved] == ["APPROVED"]
    assert approved[0]["export"]["pending"] is True


def test_search_by_status_and_colombian_days(  # type: ignore[no-untyped-def]
        client, ctx, make_member, make_obligation, gateway, clock) -> None:
    # 2026-11-23 15:00 UTC = 10:00 in Colombia; three payments on three Colombian days.
    ids = []
    for n, document in enumerate(["30000001", "30000002", "30000003"]):
        make_member(document)
        make_obligation("CR-1", document_number=document)
        ids.append(start(ctx, items=[("CR-1", 150_000)], key=f"d{n}", document_number=document).id)
        clock.advance(days=1)
    # The second payment was made on 2026-11-24 at 10:00 in Colombia.
    day = get(client, "/staff/v1/payments?status=PENDING&from=2026-11-24&to=2026-11-24").json_body
    assert [p["id"] for p in day["payments"]] == [ids[1]]
    since = get(client, "/staff/v1/payments?status=PENDING&from=2026-11-24").json_body["payments"]
    assert [p["id"] for p in since] == [ids[2], ids[1]]
    until = get(client, "/staff/v1/payments?status=PENDING&to=2026-11-23").json_body["payments"]
    assert [p["id"] for p in until] == [ids[0]]
    by_document = get(client, "/staff/v1/payments?document=30000003&from=2026-11-25&to=2026-11-25")
    assert [p["id"] for p in by_document.json_body["payments"]] == [ids[2]]
    assert get(client, "/staff/v1/payments?status=APPROVED&from=2026-11-23").json_body["payments"] == []


def test_pages_are_cut_with_an_opaque_cursor(client, ctx, ana, make_obligation, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    created = []
    for n in range(5):
        make_obligation(f"CR-{n}")
        created.append(start(ctx, items=[(f"CR-{n}", 150_000)], key=f"p{n}").id)
        clock.advance(seconds=30)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/staff/v1/payments?status=PENDING&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = get(client, path).json_body
        pages += 1
        seen += [p["id"] for p in body["payments"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["payments"]) == 2
    assert pages == 3 and seen == list(reversed(created))

    first = get(client, "/staff/v1/payments?status=PENDING&limit=2").json_body["next_cursor"]
    # Same filters, another page size: fine. Other filters, forged or garbage: refused.
    assert get(client, f"/staff/v1/payments?status=PENDING&limit=3&cursor={first}").status_code == 200
    assert_error(get(client, f"/staff/v1/payments?status=APPROVED&cursor={first}"), 400, "invalid_cursor")
    assert_error(get(client, f"/staff/v1/payments?status=PENDING&cursor={first[:-3]}xyz"),
                 400, "invalid_cursor")
    assert_error(get(client, "/staff/v1/payments?status=PENDING&cursor=nonsense"), 400, "invalid_cursor")
    clock.advance(days=2)  # cursors expire
    assert_error(get(client, f"/staff/v1/payments?status=PENDING&cursor={first}"), 400, "invalid_cursor")


@pytest.mark.parametrize(("query", "code"), [
    ("", "missing_filter"),
    ("from=2026-11-01", "missing_filter"),
    ("status=PAGADO", "invalid_status"),
    ("status=PENDING&from=2026-13-01", "invalid_date"),
    ("status=PENDING&from=01/11/2026", "invalid_date"),
    ("status=PENDING&from=2026-11-24&to=2026-11-23", "invalid_date_range"),
    ("status=PENDING&from=2024-01-01&to=2026-01-01", "invalid_date_range"),
    ("status=PENDING&limit=0", "invalid_limit"),
    ("status=PENDING&limit=101", "invalid_limit"),
    ("status=PENDING&limit=diez", "invalid_limit"),
    ("document=12a45", "invalid_document"),
    ("document=123", "invalid_document"),
    ("reference=XX123", "invalid_reference"),
    ("cus=" + "9" * 65, "invalid_cus"),
    ("cus=a%20b", "invalid_cus"),
    ("status=PENDING&estado=x", "unknown_parameter"),
])
def test_bad_search_parameters_are_400_never_500(client, query: str, code: str) -> None:  # type: ignore[no-untyped-def]
    assert_error(get(client, f"/staff/v1/payments?{query}"), 400, code)


# --- one payment ---------------------------------------------------------------------------------------

def test_payment_detail_has_history_review_and_export(client, ctx, ana, make_obligation, gateway) -> None:  # type: ignore[no-untyped-def]
    payment = approved_payment(ctx, gateway, make_obligation)
    detail = get(client, f"/staff/v1/payments/{payment.payment_id}").json_body
    assert [h["status"] for h in detail["status_history"]] == ["CREATED", "PENDING", "APPROVED"]
    assert detail["review"]["flagged"] is False and detail["export"]["pending"] is True
    assert detail["items"][0]["product_number"] == "004500001234"  # staff see it whole
    assert detail["payer_email"] == "ana.perez@correo.example" and detail["document_number"] == ANA
    post(client, "/staff/v1/exports")
    exported = get(client, f"/staff/v1/payments/{payment.payment_id}").json_body["export"]
    assert exported["pending"] is False and exported["export_id"] and exported["exported_at"]


def test_unknown_or_malformed_payment_is_404(client) -> None:  # type: ignore[no-untyped-def]
    assert_error(get(client, "/staff/v1/payments/AAAAAAAAAAAAAAAAAAAAAA"), 404, "payment_not_found")
    assert_error(get(client, "/staff/v1/payments/x"), 404, "payment_not_found")


def test_requery_applies_the_gateway_answer_and_is_audited(client, ctx, pending, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    gateway.settle(pending.reference, "APPROVED")
    clock.advance(seconds=1)
    body = post(client, f"/staff/v1/payments/{pending.id}/requery", user="ana.tesoreria").json_body
    assert body["outcome"] == "applied" and body["previous_status"] == "PENDING"
    assert body["gateway"]["status"] == "APPROVED" and body["payment"]["status"] == "APPROVED"
    assert get_obligation("CR-0001").amount_due == 0
    events = audit_of(ANA)
    (requery,) = [e for e in events if e.event == "staff_payment_requery"]
    assert requery.actor == "staff:api-key" and requery.details["to_status"] == "APPROVED"
    assert requery.ip
    assert any(e.event == "payment_approved" and e.actor == "gateway" for e in events)
    again = post(client, f"/staff/v1/payments/{pending.id}/requery").json_body
    assert again["outcome"] == "unchanged"


def test_requery_reports_a_gateway_failure(client, ctx, pending, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways.base import GatewayError

    gateway.query_error = GatewayError("caída", code="gateway_down")
    body = post(client, f"/staff/v1/payments/{pending.id}/requery").json_body
    assert body["outcome"] == "gateway_error" and body["error"] == "gateway_down"
    assert body["payment"]["status"] == "PENDING"


# --- review queue ------------------------------------------------------------------------------------

def _mismatched(ctx, gateway, pending, amount: int = 100_000):  # type: ignore[no-untyped-def]
    gateway.settle(pending.reference, "APPROVED", amount=amount)
    payments.refresh_payment(ctx, pending.id)
    flagged = get_payment(pending.id)
    assert flagged.review_flag and flagged.review_reason == "amount_mismatch"
    return flagged


def test_review_queue_lists_flagged_payments_oldest_first(  # type: ignore[no-untyped-def]
        client, ctx, make_member, make_obligation, gateway, clock) -> None:
    ids = []
    for n, document in enumerate(["40000001", "40000002", "40000003"]):
        make_member(document)
        make_obligation("CR-1", document_number=document)
        started = start(ctx, items=[("CR-1", 150_000)], key=f"r{n}", document_number=document)
        ids.append(_mismatched(ctx, gateway, started).payment_id)
        clock.advance(minutes=1)
    first = get(client, "/staff/v1/review?limit=2").json_body
    assert [p["id"] for p in first["payments"]] == ids[:2]
    assert first["payments"][0]["review"] == {"reason": "amount_mismatch"}
    rest = get(client, f"/staff/v1/review?limit=2&cursor={first['next_cursor']}").json_body
    assert [p["id"] for p in rest["payments"]] == ids[2:] and rest["next_cursor"] is None
    assert_error(get(client, "/staff/v1/review?limit=0"), 400, "invalid_limit")
    assert_error(get(client, "/staff/v1/review?status=x"), 400, "unknown_parameter")


@pytest.mark.parametrize(("body", "code"), [
    ({"action": "apply"}, "invalid_reason"),
    ({"action": "apply", "reason": "  "}, "invalid_reason"),
    ({"action": "apply", "reason": "x" * 501}, "invalid_reason"),
    ({"action": "approve", "reason": "ok, verificado"}, "invalid_action"),
    ({"reason": "ok, verificado"}, "invalid_action"),
    ([], "invalid_request"),
])
def test_resolve_needs_an_action_and_a_reason(client, ctx, pending, gateway, body, code) -> None:  # type: ignore[no-untyped-def]
    _mismatched(ctx, gateway, pending)
    assert_error(post(client, f"/staff/v1/review/{pending.id}/resolve", body), 400, code)
    assert get_payment(pending.id).review_flag  # nothing changed


def test_resolve_a_payment_not_under_review_is_409(client, pending) -> None:  # type: ignore[no-untyped-def]
    response = post(client, f"/staff/v1/review/{pending.id}/resolve",
                    {"action": "reject", "reason": "prueba"})
    assert_error(response, 409, "not_under_review")


def test_apply_needs_the_gateway_to_confirm_approved_now(client, ctx, pending, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    _mismatched(ctx, gateway, pending)
    gateway.settle(pending.reference, "PENDING")
    clock.advance(seconds=1)
    response = post(client, f"/staff/v1/review/{pending.id}/resolve",
                    {"action": "apply", "reason": "El asociado envió el soporte del débito"})
    error = assert_error(response, 409, "gateway_not_approved")
    assert error["gateway_status"] == "PENDING"
    payment = get_payment(pending.id)
    assert payment.status == "PENDING" and payment.review_flag
    refused = audit_of(ANA)[0]
    assert (refused.event, refused.actor, refused.reason) == (
        "staff_review_refused", "staff:api-key", "El asociado envió el soporte del débito")


def test_apply_uses_the_gateway_confirmed_amount(client, ctx, pending, gateway) -> None:  # type: ignore[no-untyped-def]
    _mismatched(ctx, gateway, pending, amount=100_000)  # 150.000 asked, 100.000 debited
    response = post(client, f"/staff/v1/review/{pending.id}/resolve",
                    {"action": "apply", "reason": "ACH confirma el débito por 100.000"}, user="luis")
    assert response.status_code == 200, response.body
    body = response.json_body
    assert (body["action"], body["outcome"]) == ("apply", "approved")
    payment = get_payment(pending.id)
    assert payment.status == "APPROVED" and int(payment.amount) == 100_000
    assert int(payment.original_amount) == 150_000 and int(payment.items[0].amount) == 100_000
    assert payment.review_flag is None and payment.review_reason is None
    assert (payment.review_resolution, payment.review_resolved_by) == ("apply", "staff:api-key")
    assert payment.export_pending == EXPORT_READY
    obligation = get_obligation("CR-0001")
    assert obligation.amount_due == 50_000 and obligation.pending_payment_id is None
    events = {e.event: e for e in audit_of(ANA)}
    assert events["payment_amount_corrected"].actor == "staff:api-key"
    assert events["payment_amount_corrected"].details["to_amount"] == "100000"
    approved = events["payment_approved"]
    assert (approved.actor, approved.reason) == ("staff:api-key", "ACH confirma el débito por 100.000")
    assert approved.ip  # the staff caller's address
    # The export carries the confirmed amount.
    post(client, "/staff/v1/exports")
    rows = [r for body in s3_objects().values() for r in parse_csv(body.decode())]
    assert [(r["amount"], r["payment_total"]) for r in rows] == [("100000", "100000")]


def test_apply_after_the_horizon_with_the_same_amount(client, ctx, pending, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    clock.advance(hours=24, minutes=1)
    assert payments.reconcile_pending(ctx).flagged == 1
    assert get_payment(pending.id).review_reason == "horizon_exceeded"
    gateway.settle(pending.reference, "APPROVED")
    body = post(client, f"/staff/v1/review/{pending.id}/resolve",
                {"action": "apply", "reason": "Confirmado con ACH"}).json_body
    assert body["outcome"] == "approved" and body["payment"]["amount"] == 150_000
    assert get_obligation("CR-0001").amount_due == 0


def test_reject_releases_the_obligation_and_refuses_when_the_gateway_approved(  # type: ignore[no-untyped-def]
        client, ctx, pending, gateway, clock) -> None:
    clock.advance(hours=24, minutes=1)
    payments.reconcile_pending(ctx)
    gateway.settle(pending.reference, "APPROVED")
    refused = post(client, f"/staff/v1/review/{pending.id}/resolve",
                   {"action": "reject", "reason": "Sin débito"})
    assert_error(refused, 409, "gateway_approved")
    gateway.settle(pending.reference, "PENDING")
    body = post(client, f"/staff/v1/review/{pending.id}/resolve",
                {"action": "reject", "reason": "ACH confirma que no hubo débito"}).json_body
    assert (body["outcome"], body["payment"]["status"]) == ("rejected", "REJECTED")
    assert body["payment"]["review"]["flagged"] is False
    released = get_obligation("CR-0001")
    assert released.pending_payment_id is None and released.amount_due == 150_000
    rejected = next(e for e in audit_of(ANA) if e.event == "payment_rejected")
    assert (rejected.actor, rejected.reason) == ("staff:api-key", "ACH confirma que no hubo débito")
    # If the bank approves it after all, the money is not lost silently: back to review.
    gateway.settle(pending.reference, "APPROVED")
    assert payments.staff_requery(ctx, pending.id, actor="staff:x", ip=None).outcome == "review"
    assert get_payment(pending.id).review_reason == LATE_APPROVAL
    assert_error(post(client, f"/staff/v1/review/{pending.id}/resolve",
                      {"action": "apply", "reason": "llegó"}), 409, "invalid_transition")
    cleared = post(client, f"/staff/v1/review/{pending.id}/resolve",
                   {"action": "reject", "reason": "Se devuelve por el sistema central"}).json_body
    assert cleared["outcome"] == "flag_cleared" and cleared["payment"]["status"] == "REJECTED"


def test_keep_pending_returns_the_payment_to_the_poller_with_a_new_horizon(  # type: ignore[no-untyped-def]
        client, ctx, pending, gateway, clock, make_obligation) -> None:
    clock.advance(hours=24, minutes=1)
    payments.reconcile_pending(ctx)
    body = post(client, f"/staff/v1/review/{pending.id}/resolve",
                {"action": "keep_pending", "reason": "El banco aún no responde"}).json_body
    assert body["outcome"] == "kept_pending"
    payment = get_payment(pending.id)
    assert payment.review_flag is None and payment.next_poll_at == clock.now
    assert payment.poll_horizon_at == clock.now + timedelta(hours=24)
    report = payments.reconcile_pending(ctx)
    assert (report.examined, report.still_pending, report.flagged) == (1, 1, 0)
    clock.advance(hours=24)
    assert payments.reconcile_pending(ctx).flagged == 1  # the new horizon, reached
    # An APPROVED payment flagged later (the gateway then reported another amount) cannot stay
    # pending; "apply" only clears its flag, since the gateway confirms the approval.
    flagged = flagged_approved_payment(ctx, gateway, make_obligation)
    response = post(client, f"/staff/v1/review/{flagged}/resolve",
                    {"action": "keep_pending", "reason": "prueba"})
    assert_error(response, 409, "not_pending")
    gateway.settle(get_payment(flagged).reference, "APPROVED", amount=10_000)
    cleared = post(client, f"/staff/v1/review/{flagged}/resolve",
                   {"action": "apply", "reason": "Monto correcto"})
    assert cleared.json_body["outcome"] == "flag_cleared"
    assert get_payment(flagged).review_flag is None and int(get_payment(flagged).amount) == 10_000


def flagged_approved_payment(ctx, gateway, make_obligation) -> str:  # type: ignore[no-untyped-def]
    make_obligation("CR-9", amount_due=10_000, minimum_amount=1_500, maximum_amount=10_000)
    started = start(ctx, items=[("CR-9", 10_000)], key="keep")
    gateway.settle(started.reference, "APPROVED")
    payments.refresh_payment(ctx, started.id)
    gateway.settle(started.reference, "APPROVED", amount=9_000)
    payments.staff_requery(ctx, started.id, actor="staff:x", ip=None)
    assert get_payment(started.id).review_reason == "amount_mismatch"
    return started.id


# --- members -------------------------------------------------------------------------------------------

def _sign_in(client) -> str:  # type: ignore[no-untyped-def]
    ticket = client.http.post("/api/v1/session/identify", headers=JSON,
                              body=json.dumps({"document_number": ANA})).json_body["login_ticket"]
    return client.http.post("/api/v1/session", headers=JSON,
                            body=json.dumps({"login_ticket": ticket, "password": PASSWORD}))


def _cookie(response) -> str:  # type: ignore[no-untyped-def]
    cookies = response.headers["Set-Cookie"]
    cookie = next(c for c in (cookies if isinstance(cookies, list) else [cookies])
                  if c.startswith("sv_session="))
    return cookie.split(";")[0]


def test_block_ends_every_session_and_login_then_fails_generically(client, ana, clock) -> None:  # type: ignore[no-untyped-def]
    cookies = [_cookie(_sign_in(client)) for _ in range(2)]
    assert all(client.http.get("/api/v1/me", headers={"Cookie": c}).status_code == 200 for c in cookies)
    response = post(client, f"/staff/v1/members/{ANA}/block", {"reason": "Suplantación reportada"})
    assert response.status_code == 200, response.body
    assert response.json_body == {"document_number": ANA, "portal_blocked": True, "changed": True,
                                  "sessions_ended": 2}
    assert list(Session.by_member.query(ANA)) == []
    assert all(client.http.get("/api/v1/me", headers={"Cookie": c}).status_code == 401 for c in cookies)
    refused = _sign_in(client)
    assert_error(refused, 401, "invalid_credentials")
    blocked = audit_of(ANA)
    event = next(e for e in blocked if e.event == "staff_member_blocked")
    assert (event.actor, event.reason) == ("staff:api-key", "Suplantación reportada") and event.ip
    assert Member.get(ANA).portal_blocked is True

    clock.advance(seconds=1)
    again = post(client, f"/staff/v1/members/{ANA}/block", {"reason": "Otra vez"}).json_body
    assert again["changed"] is False
    unblocked = post(client, f"/staff/v1/members/{ANA}/unblock", {"reason": "Verificado en oficina"})
    assert unblocked.json_body["portal_blocked"] is False and unblocked.json_body["changed"] is True
    clock.advance(seconds=1)
    assert _sign_in(client).status_code == 201
    assert audit_of(ANA)[0].event in ("authn_login_success", "terms_accepted")


def test_block_errors(client, ana) -> None:  # type: ignore[no-untyped-def]
    assert_error(post(client, "/staff/v1/members/99999999/block", {"reason": "prueba"}),
                 404, "member_not_found")
    assert_error(post(client, f"/staff/v1/members/{ANA}/block", {}), 400, "invalid_reason")
    assert_error(post(client, f"/staff/v1/members/{ANA}/block", raw=b"{"), 400, "invalid_request")
    assert_error(post(client, "/staff/v1/members/12ab5/block", {"reason": "prueba"}), 400, "invalid_document")
    assert Member.get(ANA).portal_blocked is False


def test_member_audit_is_newest_first_and_paged(client, ctx, ana, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        _sign_in(client)
        clock.advance(seconds=10)
    post(client, f"/staff/v1/members/{ANA}/block", {"reason": "Revisión"})
    first = get(client, f"/staff/v1/members/{ANA}/audit?limit=2").json_body
    assert [e["event"] for e in first["events"]] == ["staff_member_blocked", "authn_login_success"]
    assert first["events"][0]["actor"] == "staff:api-key" and first["events"][0]["reason"] == "Revisión"
    assert first["events"][0]["at"].endswith("-05:00")
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor:
        page = get(client, f"/staff/v1/members/{ANA}/audit?limit=2&cursor={cursor}").json_body
        rest += page["events"]
        cursor = page["next_cursor"]
    everything = first["events"] + rest
    assert len(everything) == len(audit_of(ANA))
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    foreign_cursor = (f"/staff/v1/members/{ANA}/audit?cursor={first['next_cursor']}"
                      .replace(ANA, "1020304051"))
    assert_error(get(client, foreign_cursor), 400, "invalid_cursor")
    assert_error(get(client, "/staff/v1/members/abc/audit"), 400, "invalid_document")
    assert get(client, "/staff/v1/members/55555555/audit").json_body == {"events": [], "next_cursor": None}


def test_staff_logs_mask_document_numbers(client, ctx, ana, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="sucursal")
    post(client, f"/staff/v1/members/{ANA}/block", {"reason": "Revisión"})
    get(client, f"/staff/v1/members/{ANA}/audit")
    get(client, f"/staff/v1/payments?document={ANA}")
    lines = [r.getMessage() for r in caplog.records if r.name == "sucursal"]
    assert any('"event": "staff_member_blocked"' in line for line in lines)
    # Staff reads of member data use the OWASP logging vocabulary's name.
    reads = [line for line in lines if '"event": "sensitive_read"' in line]
    assert any('"what": "member_audit"' in line for line in reads)
    assert any('"what": "payment_search"' in line for line in reads)
    assert all(ANA not in line for line in lines), [line for line in lines if ANA in line]
    assert any("*******050" in line for line in lines)


# --- receipts ------------------------------------------------------------------------------------------

def test_resend_receipt_sends_one_email(client, ctx, ana, make_obligation, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    payment = approved_payment(ctx, gateway, make_obligation)
    clock.advance(seconds=1)
    before = len(sent_emails())
    response = post(client, f"/staff/v1/payments/{payment.payment_id}/resend-receipt",
                    {"reason": "El asociado no lo recibió"})
    assert response.status_code == 202, response.body
    emails = sent_emails()[before:]
    assert len(emails) == 1
    assert emails[0].destinations["ToAddresses"] == ["ana.perez@correo.example"]
    assert payment.reference in emails[0].subject and "Aprobada" in emails[0].subject
    event = audit_of(ANA)[0]
    assert (event.event, event.actor, event.reason) == (
        "staff_receipt_resent", "staff:api-key", "El asociado no lo recibió")


def test_resend_receipt_refuses_an_open_payment(client, pending) -> None:  # type: ignore[no-untyped-def]
    before = len(sent_emails())
    assert_error(post(client, f"/staff/v1/payments/{pending.id}/resend-receipt"), 409, "not_final")
    assert_error(post(client, "/staff/v1/payments/AAAAAAAAAAAAAAAAAAAAAA/resend-receipt"),
                 404, "payment_not_found")
    assert len(sent_emails()) == before


# --- exports -------------------------------------------------------------------------------------------

def test_exports_on_demand_and_read_back(client, ctx, ana, make_obligation, gateway) -> None:  # type: ignore[no-untyped-def]
    payment = approved_payment(ctx, gateway, make_obligation)
    created = post(client, "/staff/v1/exports", user="tesoreria")
    assert created.status_code == 201, created.body
    body = created.json_body
    assert body["rows"] == 1 and body["payments"] == 1 and body["total_amount"] == 150_000
    assert body["key"].startswith("exports/2026/11/23/pagos-aprobados-")
    read = get(client, f"/staff/v1/exports/{body['export_id']}").json_body
    assert read["status"] == "COMPLETE" and read["requested_by"] == "staff:api-key"
    assert (read["key"], read["rows"]) == (body["key"], 1)
    assert read["download_url"] and body["key"] in read["download_url"]
    assert [r["reference"] for r in parse_csv(s3_objects()[body["key"]].decode())] == [payment.reference]
    assert post(client, "/staff/v1/exports").json_body["rows"] == 0
    assert_error(get(client, "/staff/v1/exports/20261123-100000-zzzzzz"), 404, "export_not_found")
    assert_error(get(client, "/staff/v1/exports/..%2Fetc"), 404, "export_not_found")


# --- the contract ---------------------------------------------------------------------------------------

def test_openapi_describes_the_staff_api(client) -> None:  # type: ignore[no-untyped-def]
    document = client.http.get("/api/v1/openapi.json").json_body
    staff_paths = {p for p in document["paths"] if p.startswith("/staff/v1/")}
    assert staff_paths == {
        "/staff/v1/payments", "/staff/v1/payments/{payment_id}", "/staff/v1/payments/{payment_id}/requery",
        "/staff/v1/payments/{payment_id}/resend-receipt", "/staff/v1/review",
        "/staff/v1/review/{payment_id}/resolve", "/staff/v1/members/{document_number}/audit",
        "/staff/v1/members/{document_number}/block", "/staff/v1/members/{document_number}/unblock",
        "/staff/v1/exports", "/staff/v1/exports/{export_id}"}
    assert document["components"]["securitySchemes"]["staffApiKey"]["name"] == "X-Api-Key"
    assert any(t["name"] == "staff" for t in document["tags"])
    for path in staff_paths:
        for operation in document["paths"][path].values():
            assert operation["tags"] == ["staff"] and operation["security"] == [{"staffApiKey": []}]
            assert "401" in operation["responses"]


# --- DynamoDB round trips per staff call (no Scan, ever) -----------------------------------------

def test_round_trips_per_staff_query(client, ctx, pending, gateway, dynamo_calls) -> None:  # type: ignore[no-untyped-def]
    payment = get_payment(pending.id)
    expected = {
        f"/staff/v1/payments?reference={payment.reference}": ["Query"],
        f"/staff/v1/payments?cus={payment.cus}": ["Query"],
        f"/staff/v1/payments?document={ANA}&status=PENDING": ["Query"],
        "/staff/v1/payments?status=PENDING&from=2026-11-01&to=2026-11-30": ["Query"],
        f"/staff/v1/payments/{pending.id}": ["GetItem"],
        "/staff/v1/review": ["Query"],
        f"/staff/v1/members/{ANA}/audit": ["Query"],
    }
    for path, operations in expected.items():
        dynamo_calls.reset()
        assert get(client, path).status_code == 200, path
        assert dynamo_calls.operations == operations, (path, dynamo_calls.operations)
    dynamo_calls.reset()
    post(client, f"/staff/v1/members/{ANA}/block", {"reason": "prueba"})
    assert dynamo_calls.operations == ["GetItem", "TransactWriteItems", "Query"]  # no session to delete
    assert "Scan" not in dynamo_calls.operations


def test_locally_the_actor_is_the_console_session_or_the_api_key_never_a_header(  # type: ignore[no-untyped-def]
        client, browser, staff_pool, make_member) -> None:
    from tests.staff_support import staff_sign_in

    make_member(ANA)
    staff_sign_in(browser, staff_pool, "tesoreria", "tesoreria")
    cookie = "; ".join(f"{k}={v}" for k, v in browser.jar.items())
    headers = {**JSON, "X-Api-Key": KEY, "X-Staff-User": "alguien-mas", "Cookie": cookie}
    answer = client.http.post(f"/staff/v1/members/{ANA}/block", headers=headers,
                              body=json.dumps({"reason": "Suplantación reportada"}).encode())
    assert answer.status_code == 200, answer.body
    headers.pop("Cookie")
    client.http.post(f"/staff/v1/members/{ANA}/unblock", headers=headers,
                     body=json.dumps({"reason": "Verificado en la oficina"}).encode())
    actors = {e.event: e.actor for e in audit_of(ANA)}
    assert actors["staff_member_blocked"] == "staff:tesoreria"
    assert actors["staff_member_unblocked"] == "staff:api-key"
