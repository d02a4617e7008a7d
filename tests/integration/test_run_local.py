"""The local runner (SPEC §5): the whole stack on free ports, answering, and stopping cleanly."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.run_local import StackHandle, start_stack

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, str, bytes]:
    with _OPENER.open(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _post_json(url: str, body: Any) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _port_closed(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture(scope="module")
def stack() -> Iterator[StackHandle]:
    try:
        import app  # noqa: F401
    except Exception as exc:
        pytest.skip(f"app.py does not import yet, so chalice local cannot start: {exc!r}")
    handle = start_stack(0, env_overrides={"BCRYPT_COST": "4", "RECOVERY_RESPONSE_FLOOR_MS": "0"},
                         poll_interval=0)
    try:
        yield handle
    finally:
        handle.stop()
        print(handle.log_tail(40))


def test_app_outbox_and_sandbox_answer(stack: StackHandle) -> None:
    status, content_type, body = _get(f"{stack.app_url}/")
    assert status == 200 and content_type.startswith("text/html")
    assert "<html" in body.decode("utf-8").lower()

    status, content_type, body = _get(f"{stack.outbox_url}/api/messages")
    assert status == 200 and content_type.startswith("application/json")
    assert isinstance(json.loads(body)["messages"], list)

    status, _, body = _get(f"{stack.outbox_url}/")
    assert status == 200 and "Correos enviados (bandeja local)" in body.decode("utf-8")
    assert stack.sandbox_url is not None and stack.moto_url.startswith("http://127.0.0.1:")
    assert {m["status"] for m in stack.members} >= {"ACTIVO", "INACTIVO", "BLOQUEADO"}


def test_an_unknown_path_answers_as_the_deployed_api(stack: StackHandle) -> None:
    """chalice local's English 403 "Missing Authentication Token" becomes the gateway response."""
    with pytest.raises(urllib.error.HTTPError) as answer:
        _OPENER.open(f"{stack.app_url}/no/existe", timeout=10)
    assert answer.value.code == 404
    assert json.loads(answer.value.read())["error"] == {"code": "not_found",
                                                        "message": "La dirección solicitada no existe."}
    headers = answer.value.headers
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Request-Id"]
    assert headers["Content-Type"].startswith("application/json")


def test_recovery_email_reaches_the_outbox(stack: StackHandle) -> None:
    member = next(m for m in stack.members if m["status"] == "ACTIVO")
    assert _post_json(f"{stack.app_url}/api/v1/recovery",
                      {"document_number": member["document_number"]}) == 202
    deadline = time.monotonic() + 10
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not messages:
        messages = json.loads(_get(f"{stack.outbox_url}/api/messages")[2])["messages"]
        time.sleep(0.1)
    assert messages, "no email reached the outbox"
    newest = messages[0]
    assert stack.app_url in newest["html"] and "cambiar-clave?token=" in newest["text"]
    status, _, page = _get(f"{stack.outbox_url}/mensajes/{newest['id']}")
    assert status == 200 and newest["subject"] in page.decode("utf-8")


def test_scheduled_functions_can_be_run_on_demand(stack: StackHandle) -> None:
    results = stack.run_schedules()
    assert all(result["ok"] for result in results), results
    assert [r["name"] for r in results] == stack.schedules


def test_stop_ends_everything() -> None:
    try:
        import app  # noqa: F401
    except Exception as exc:
        pytest.skip(f"app.py does not import yet: {exc!r}")
    handle = start_stack(0, env_overrides={"BCRYPT_COST": "4"}, poll_interval=0)
    urls = [handle.app_url, handle.outbox_url, handle.moto_url, handle.sandbox_url or ""]
    handle.stop()
    assert handle.process.returncode == 0, handle.log_tail()  # stopped on SIGTERM, not killed
    assert all(_port_closed(url) for url in urls if url), handle.log_tail()


# --- the outbox on its own ---------------------------------------------------------------------

def _mime(to: str, subject: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "no-responder@coop.example", to
    message["Date"] = "Mon, 23 Nov 2026 15:00:00 +0000"
    message.set_content("Texto del recibo")
    message.add_alternative("<html><body><p>Recibo <a href='http://x/y'>ver</a></p></body></html>",
                            subtype="html")
    message.add_attachment(b"%PDF-1.4 demo", maintype="application", subtype="pdf",
                           filename="recibo.pdf")
    return message.as_bytes()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "data.json"])
def test_outbox_lists_simple_and_raw_emails_newest_first(in_process: bool) -> None:
    import uuid

    import boto3

    from devtools.moto_server import start_moto_server
    from devtools.outbox import in_process_records, start_outbox

    to = f"socio-{uuid.uuid4().hex[:8]}@correo.example"
    with start_moto_server(0) as moto:
        ses = boto3.client("ses", endpoint_url=moto.url, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        ses.verify_domain_identity(Domain="coop.example")
        with start_outbox(moto.url, 0, records=in_process_records() if in_process else None) as box:
            ses.send_email(Source="no-responder@coop.example", Destination={"ToAddresses": [to]},
                           Message={"Subject": {"Data": "Clave temporal"},
                                    "Body": {"Html": {"Data": "<p>Su clave: <b>ABC</b></p>"},
                                             "Text": {"Data": "Su clave: ABC"}}})
            _get(f"{box.url}/api/messages")  # discovered in order, as a person refreshing would
            ses.send_raw_email(Source="no-responder@coop.example", Destinations=[to],
                               RawMessage={"Data": _mime(to, "Comprobante de pago")})
            messages = json.loads(_get(f"{box.url}/api/messages?to={to}")[2])["messages"]
            assert [m["subject"] for m in messages] == ["Comprobante de pago", "Clave temporal"]
            receipt, key = messages
            assert receipt["date"] == "2026-11-23T15:00:00+00:00" and receipt["to"] == [to]
            assert receipt["text"].strip() == "Texto del recibo" and "Recibo" in receipt["html"]
            assert receipt["attachments"] == [{"filename": "recibo.pdf", "size": 13,
                                               "content_type": "application/pdf"}]
            assert key["text"] == "Su clave: ABC" and "<b>ABC</b>" in key["html"]
            status, content_type, pdf = _get(f"{box.url}/mensajes/{receipt['id']}/adjuntos/0")
            assert (status, content_type, pdf) == (200, "application/pdf", b"%PDF-1.4 demo")
            status, _, page = _get(f"{box.url}/mensajes/{receipt['id']}")
            assert status == 200 and "recibo.pdf" in page.decode("utf-8")
            _, content_type, embedded = _get(f"{box.url}/mensajes/{receipt['id']}/html?embed=1")
            assert content_type.startswith("text/html") and b'<base target="_top">' in embedded


def test_an_approved_payments_receipt_reaches_the_outbox_through_the_events_stream(
        stack: StackHandle) -> None:
    """The approval's transaction put its PaymentApproved in the events table (written here into
    the stack's moto as the unit of work writes it); the runner reads the table's stream, the app's
    stream handler sends the receipt, once."""
    import uuid
    from datetime import UTC, datetime

    import boto3

    from chalicelib.adapters.dynamo.models import OutboxEvent, Payment, PaymentItem, bind_tables
    from chalicelib.adapters.dynamo.outbox import outbox_item
    from chalicelib.config import get_settings
    from chalicelib.domain.events import PaymentApproved

    bind_tables(get_settings())  # the stack's tables: this process shares its environment

    member = next(m for m in stack.members if m["status"] == "ACTIVO")
    email = f"socio-{uuid.uuid4().hex[:8]}@correo.example"
    now = datetime.now(UTC)
    payment = Payment(
        payment_id=uuid.uuid4().hex[:22], reference=f"SV-STREAM-{uuid.uuid4().hex[:6].upper()}",
        document_number=member["document_number"], payer_name=member["full_name"], payer_email=email,
        status="APPROVED", amount=150_000, bank_code="1022", bank_name="BANCO UNION COLOMBIANO",
        person_type="natural", description="Pago Sucursal Virtual", ip="190.25.1.2", gateway="wompi",
        gateway_id="tx-stream-1", cus="CUS-1", created_at=now, updated_at=now, approved_at=now,
        status_history=[], receipt_emailed=False,
        items=[PaymentItem(obligation_id="CR-STREAM", type="CREDITO", product_number="1234",
                           description="Crédito de libre inversión", amount=150_000)])
    event = PaymentApproved(payment_id=payment.payment_id, document_number=payment.document_number,
                            reference=payment.reference, at=now)
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto_url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")
    dynamodb.put_item(TableName=Payment.Meta.table_name, Item=payment.serialize())
    for _ in range(2):  # moto streams the same put again (MODIFY): a second delivery, no second email
        dynamodb.put_item(TableName=OutboxEvent.Meta.table_name, Item=outbox_item(event).serialize())

    deadline = time.monotonic() + 20
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not messages:
        messages = json.loads(_get(f"{stack.outbox_url}/api/messages?to={email}")[2])["messages"]
        time.sleep(0.2)
    assert messages, f"no receipt reached the outbox:\n{stack.log_tail(40)}"
    (receipt,) = messages
    assert payment.reference in receipt["subject"] and "Aprobada" in receipt["subject"]
    stored = dynamodb.get_item(TableName=Payment.Meta.table_name, ConsistentRead=True,
                               Key={"payment_id": {"S": payment.payment_id}})["Item"]
    assert stored["receipt_emailed"] == {"BOOL": True}
    time.sleep(2 * 1.0)  # two more reads of the stream: nothing more is sent
    assert len(json.loads(_get(f"{stack.outbox_url}/api/messages?to={email}")[2])["messages"]) == 1
