"""notifications.handle_events on its own: each event to its handler, failures returned, not raised."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from chalicelib.config import get_settings
from chalicelib.context import Context
from chalicelib.domain.events import PaymentApproved, PaymentEvent, PaymentFlagged, PaymentRejected
from chalicelib.services import notifications

AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PaymentRefunded(PaymentEvent):
    """A kind this code has no handler for."""


def event(kind: type[PaymentEvent], payment_id: str, **fields: str) -> PaymentEvent:
    return kind(payment_id=payment_id, document_number="1020304050", reference=f"SV-{payment_id}",
                at=AT, **fields)


def test_each_event_goes_to_its_handler_and_a_failure_is_returned_not_raised(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def handler(ctx: Context, events: Sequence[PaymentEvent]) -> None:
        for e in events:
            if e.payment_id == "boom":
                raise RuntimeError("SES is down")
            seen.append(f"{type(e).__name__}:{e.payment_id}")

    monkeypatch.setitem(notifications.HANDLERS, PaymentApproved, handler)
    monkeypatch.setitem(notifications.HANDLERS, PaymentRejected, handler)
    batch = [event(PaymentApproved, "a"), event(PaymentApproved, "boom"),
             event(PaymentFlagged, "f", reason="amount"), event(PaymentRefunded, "r"),
             event(PaymentRejected, "b", status="REJECTED"), event(PaymentRejected, "boom", status="FAILED")]
    assert notifications.handle_events(Context(get_settings()), batch) == [1, 5]
    assert seen == ["PaymentApproved:a", "PaymentRejected:b"]  # flagged and unknown: skipped


def test_approvals_and_rejections_send_the_payments_receipt() -> None:
    from chalicelib.services.payments import handle_payment_events

    handlers = notifications.HANDLERS
    assert handlers == {PaymentApproved: handle_payment_events, PaymentRejected: handle_payment_events}
