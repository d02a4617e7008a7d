"""The scheduled poller: queries the gateway for every due payment and applies the answer."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.gateways.base import GatewayError
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict
from chalicelib.domain.payments import CREATED, EXPIRED, PENDING, Payment
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.payments.core import POLL_SHARDS, payment_logs, query_gateway
from chalicelib.services.payments.receipts import deliver_receipt
from chalicelib.services.payments.settle import METRIC_FLAGGED, flag, mismatch, news, settle
from chalicelib.services.unit_of_work import UnitOfWork

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
        uow = ctx.unit_of_work()  # each due payment is written in it (after the read, per payment)
        for payment in uow.payments.due(str(shard), now, page_size=POLL_PAGE_SIZE):
            report.examined += 1
            try:
                with payment_logs(payment):
                    reconcile_one(ctx, uow, payment, now, report)
            except Exception:
                report.errors += 1
                logging.getLogger("sucursal").exception("reconcile_failed payment_id=%s",
                                                        payment.payment_id)
    counts: dict[str, Any] = dict(report.as_dict())
    log_event("payment_reconcile_run", **counts)
    return report


def write(uow: UnitOfWork, payment: Payment) -> bool:
    """One version-checked write of ``payment``; False if it moved meanwhile (the next run sees
    its new state)."""
    with uow:
        uow.payments.update(payment)
        try:
            uow.commit()
        except Conflict:
            return False
    return True


def reschedule(uow: UnitOfWork, payment: Payment, at: datetime,
               found: Mapping[str, Any] | None = None) -> None:
    later = copy.deepcopy(payment)
    for name, value in (found or {}).items():
        setattr(later, name, value)
    later.next_poll_at = at
    write(uow, later)


def reconcile_one(ctx: Context, uow: UnitOfWork, payment: Payment, now: datetime,
                  report: ReconcileReport) -> None:
    """One due payment: its owed receipt, or the gateway's answer (or the next query's time)."""
    s = ctx.settings
    every = timedelta(seconds=s.poll_every_seconds)
    if rules.is_final(payment.status):  # only here while its receipt email is owed
        if payment.receipt_owed:
            report.emails_sent += deliver_receipt(ctx, payment, uow=uow)
        else:  # a stale index entry (its receipt sent, or not owed): out of the poller's index
            done = copy.deepcopy(payment)
            done.leave_poller()
            write(uow, done)
        return
    past_horizon = now >= max(payment.created_at + timedelta(seconds=s.poll_horizon_seconds),
                              payment.poll_horizon_at or payment.created_at)  # staff: keep_pending
    try:
        transaction = query_gateway(ctx, payment)
    except GatewayError as exc:
        log_event("payment_query_failed", level=30, code=exc.code)
        report.errors += 1
        if past_horizon:
            report.flagged += flag_horizon(ctx, uow, payment, now)
        else:
            reschedule(uow, payment, now + every)
        return
    if transaction is None:  # never reached the gateway (a create that timed out, or never sent)
        expires = payment.created_at + timedelta(seconds=s.created_expiry_seconds)
        if payment.status == CREATED and now >= expires:
            outcome, _ = settle(ctx, payment, target=EXPIRED, transaction=None, actor="system",
                                uow=uow)
            report.expired += outcome == "applied"
        else:
            reschedule(uow, payment, min(now + every, max(expires, now + timedelta(seconds=60))))
            report.still_pending += 1
        return
    if transaction.status != payment.status or mismatch(payment, transaction):
        outcome, payment = settle(ctx, payment, target=transaction.status, transaction=transaction,
                                  actor="gateway", uow=uow)
        report.applied += outcome == "applied"
        report.flagged += outcome == "review"
        if outcome in ("applied", "review"):
            return
    if payment.status != PENDING:
        return
    if past_horizon:
        report.flagged += flag_horizon(ctx, uow, payment, now)
        return
    reschedule(uow, payment, now + every, news(payment, transaction))
    report.still_pending += 1


def flag_horizon(ctx: Context, uow: UnitOfWork, payment: Payment, now: datetime) -> bool:
    """Past the horizon (24 h): staff reconcile it with ACH's tools; the poller lets it go."""
    flagged = copy.deepcopy(payment)
    with uow:
        flag(ctx, uow, flagged, "horizon_exceeded", actor="system", now=now)
        try:
            uow.commit()
        except Conflict:
            return False  # it moved meanwhile; nothing to flag
    emit_metric(METRIC_FLAGGED, 1, "Count")
    return True
