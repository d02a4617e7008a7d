"""The scheduled poller: queries the gateway for every due payment and applies the answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import Payment
from chalicelib.adapters.dynamo.repositories import aws_error_code
from chalicelib.adapters.gateways.base import GatewayError
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.payments import CREATED, EXPIRED, PENDING
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.payments.core import POLL_SHARDS, _Change, _payment_logs, _query_gateway
from chalicelib.services.payments.receipts import _retry_receipt
from chalicelib.services.payments.settle import METRIC_FLAGGED, _details, _flag, _mismatch, _settle

POLL_PAGE_SIZE = 50


@dataclass
class ReconcileReport:
    examined: int = 0
    applied: int = 0
    still_pending: int = 0
    expired: int = 0
    flagged: int = 0
    emails_sent: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def reconcile_pending(ctx: Context) -> ReconcileReport:
    """Query the gateway for every payment due in the sparse due_poll index (never a scan)."""
    report = ReconcileReport()
    now = ctx.now()
    for shard in range(POLL_SHARDS):
        for payment in store.due_payments(str(shard), now, page_size=POLL_PAGE_SIZE):
            report.examined += 1
            try:
                with _payment_logs(payment):
                    _reconcile_one(ctx, payment, now, report)
            except Exception:
                report.errors += 1
                logging.getLogger("sucursal").exception("reconcile_failed payment_id=%s",
                                                        payment.payment_id)
    log_event("payment_reconcile_run", **report.as_dict())
    return report


def _reschedule(payment: Payment, at: datetime, extra: Mapping[str, Any] | None = None) -> None:
    change = _Change(sets={**(extra or {}), "next_poll_at": at})
    try:
        payment.update(actions=change.actions(), condition=Payment.status == payment.status)
    except UpdateError as exc:  # it moved meanwhile: the next run sees the new state
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise


def _reconcile_one(ctx: Context, payment: Payment, now: datetime, report: ReconcileReport) -> None:
    s = ctx.settings
    every = timedelta(seconds=s.poll_every_seconds)
    if rules.is_final(payment.status):  # only here while its receipt email is owed
        if not payment.receipt_emailed and _retry_receipt(ctx, payment):
            report.emails_sent += 1
        elif payment.receipt_emailed:
            _reschedule_out(payment)
        return
    past_horizon = now >= max(payment.created_at + timedelta(seconds=s.poll_horizon_seconds),
                              payment.poll_horizon_at or payment.created_at)  # staff: keep_pending
    try:
        transaction = _query_gateway(ctx, payment)
    except GatewayError as exc:
        log_event("payment_query_failed", level=30, code=exc.code)
        report.errors += 1
        if past_horizon:
            report.flagged += _flag_horizon(ctx, payment, now)
        else:
            _reschedule(payment, now + every)
        return
    if transaction is None:  # never reached the gateway (a create that timed out, or never sent)
        expires = payment.created_at + timedelta(seconds=s.created_expiry_seconds)
        if payment.status == CREATED and now >= expires:
            outcome, _ = _settle(ctx, payment, target=EXPIRED, transaction=None, actor="system")
            report.expired += outcome == "applied"
        else:
            _reschedule(payment, min(now + every, max(expires, now + timedelta(seconds=60))))
            report.still_pending += 1
        return
    if transaction.status != payment.status or _mismatch(payment, transaction):
        outcome, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                   actor="gateway")
        report.applied += outcome == "applied"
        report.flagged += outcome == "review"
        if outcome in ("applied", "review"):
            return
    if payment.status != PENDING:
        return
    if past_horizon:
        report.flagged += _flag_horizon(ctx, payment, now)
        return
    _reschedule(payment, now + every, _details(payment, transaction))
    report.still_pending += 1


def _flag_horizon(ctx: Context, payment: Payment, now: datetime) -> bool:
    """Past the horizon (24 h): staff reconcile it with ACH's tools; the poller lets it go."""
    tx = store.Tx()
    _flag(ctx, tx, payment, "horizon_exceeded", actor="system", now=now)
    try:
        tx.commit()
    except store.Cancelled:
        return False  # it moved meanwhile; nothing to flag
    emit_metric(METRIC_FLAGGED, 1, "Count")
    return True


def _reschedule_out(payment: Payment) -> None:
    """A stale index entry (its receipt already sent): take it out of the poller's index."""
    payment.update(actions=[Payment.poll_shard.remove(), Payment.next_poll_at.remove()])
