"""A stateful property test of the back office, with either kind of gateway: imports of the core
system's file, payments, gateway notifications (duplicated, out of order), polls and exports in
random order.

moto in process (a fresh one per example), the FakeGateway of tests/payment_support.py and a clock
moved by hand. The core system is simulated: each import lists a random subset of the member's
obligations with random balances and a cut-off a random time back (before or after the payments
approved and exported meanwhile).

Invariants, after every step:

* no balance (amount due, minimum, maximum) is negative;
* no obligation is locked by a payment that is not CREATED/PENDING, and none CLOSED is locked;
* **each approved payment is applied exactly once**: an obligation's balance is always the core's
  last accepted balance minus the portal payments it still carries, ``max(0, core - sum)``, and
  an approved payment is carried by each of its obligations (with its amount) until an import
  whose cut-off follows its export drops it, which marks it "Aplicado en la cooperativa" first;
  a payment that is not approved is carried by none;
* **exported at most once**: a payment is in at most one export file, only if approved, and in
  the file of its ``export_id``; after a final export (teardown) every approved payment is in
  exactly one;
* closing: after a full file, the obligations it did not list are CLOSED unless a payment holds
  them (reported), and those it listed with an accepted row are OPEN.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.backoffice_support import BUCKET, parse_csv
from tests.conftest import FakeClock
from tests.payment_support import FakeGateway

DOC = "1020304050"
OBLIGATIONS = ("APO-1", "CRE-1", "CON-1")
HEADER = ("document_number;obligation_id;type;product_number;description;due_date;amount_due;"
          "minimum_amount;maximum_amount;cutoff")
COLOMBIA = timezone(timedelta(hours=-5))
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

#: A core balance: amount due (whole thousands, payable), minimum as a % of it, maximum beyond it.
balances = st.tuples(st.integers(2, 400).map(lambda k: k * 1000), st.integers(0, 100),
                     st.integers(0, 200))


class BackOffice(RuleBasedStateMachine):
    #: The FakeGateway's name and whether it chooses the bank (Wompi's way: the portal asks).
    GATEWAY: tuple[str, bool] = ("fake", False)

    def __init__(self) -> None:
        super().__init__()
        from moto import mock_aws

        from chalicelib.adapters.dynamo.models import ALL_MODELS, Member, bind_tables
        from chalicelib.adapters.gateways import registry
        from chalicelib.config import get_settings
        from chalicelib.context import Runtime, get_context, reset_contexts

        bind_tables(get_settings())
        self._moto = mock_aws()
        self._moto.start()
        for model in ALL_MODELS:
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        import boto3

        boto3.client("ses", region_name="us-east-1").verify_domain_identity(
            Domain="coopejemplo.example")
        self.clock = FakeClock(START)
        self._saved_clock = Runtime.__dict__["clock"]
        Runtime.clock = staticmethod(self.clock)  # type: ignore[assignment]
        self.gateway = FakeGateway(self.GATEWAY[0], chooses_bank=self.GATEWAY[1])
        self._saved_gateway_for = registry.gateway_for
        registry.gateway_for = lambda _ctx: self.gateway  # type: ignore[assignment]
        reset_contexts()
        self.ctx = get_context()
        # No email: receipts (SES + a PDF each) are not what this test is about, and cost time.
        Member(document_number=DOC, document_type="CC", full_name="Ana María Pérez",
               email=None, phone="3001234567", status="ACTIVO").save()
        self.core: dict[str, tuple[int, int, int]] = {}  # last accepted (due, min, max)
        self.cutoff: dict[str, datetime] = {}  # last accepted cut-off
        self.payments: list[tuple[str, str]] = []  # (payment id, reference)
        self.keys = 0
        self._files: dict[str, list[str]] = {}  # export files read so far (never rewritten)

    def teardown(self) -> None:
        from chalicelib.adapters.dynamo.models import Payment
        from chalicelib.adapters.gateways import registry
        from chalicelib.context import Runtime, reset_contexts
        from chalicelib.services import exports

        try:
            # A final export: every approved payment is then in exactly one file.
            exports.export_approved(self.ctx, now=self.clock.now, requested_by="system:schedule")
            files = self._exported()
            approved = {p.reference for p in Payment.by_member.query(DOC) if p.status == "APPROVED"}
            counted = [ref for refs in files.values() for ref in refs]
            assert sorted(counted) == sorted(approved), (counted, approved)
        finally:
            Runtime.clock = self._saved_clock  # type: ignore[assignment]
            registry.gateway_for = self._saved_gateway_for  # type: ignore[assignment]
            reset_contexts()
            self._moto.stop()

    # --- helpers ------------------------------------------------------------------------------

    def _obligations(self) -> dict[str, Any]:
        from chalicelib.adapters.dynamo.models import Obligation

        return {o.obligation_id: o for o in Obligation.query(DOC, consistent_read=True)}

    def _payments(self) -> dict[str, Any]:
        from chalicelib.adapters.dynamo.models import Payment

        if not self.payments:
            return {}
        fields = ["payment_id", "reference", "status", "items", "core_applied_at", "exported_at",
                  "export_id"]  # what the invariants read (moto's serializer is slow per field)
        return {p.payment_id: p for p in Payment.batch_get(
            [pid for pid, _ in self.payments], consistent_read=True, attributes_to_get=fields)}

    def _exported(self) -> dict[str, list[str]]:
        """Export file key → the payment references in it (each once per file)."""
        import boto3
        from botocore.exceptions import ClientError

        s3 = boto3.client("s3", region_name="us-east-1")
        try:
            listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/").get("Contents", [])
        except ClientError:
            return {}  # no export yet: the bucket is made by the first one
        for entry in listing:
            if entry["Key"] not in self._files:
                body = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read().decode("utf-8")
                self._files[entry["Key"]] = list(dict.fromkeys(r["reference"] for r in parse_csv(body)))
        return dict(self._files)

    def _pick(self, index: int) -> tuple[str, str] | None:
        """One of the payments, the most recent ones first (index 0 is the last one)."""
        return self.payments[-1 - index % len(self.payments)] if self.payments else None

    # --- rules ------------------------------------------------------------------------------

    @initialize(rows=st.lists(balances, min_size=len(OBLIGATIONS), max_size=len(OBLIGATIONS)),
                which=st.integers(0, len(OBLIGATIONS) - 1), share=st.integers(0, 100))
    def first_file_and_payment(self, rows: list[tuple[int, int, int]], which: int, share: int) -> None:
        """The core's first file; the member starts paying one obligation at once."""
        self._import(dict(zip(OBLIGATIONS, rows, strict=True)), back_minutes=60)
        self.start_payment(which, share)

    @rule(listed=st.lists(st.sampled_from(OBLIGATIONS), unique=True, max_size=len(OBLIGATIONS)),
          rows=st.lists(balances, min_size=len(OBLIGATIONS), max_size=len(OBLIGATIONS)),
          back_minutes=st.sampled_from([0, 0, 5, 20, 90, 240]))
    def core_file(self, listed: list[str], rows: list[tuple[int, int, int]], back_minutes: int) -> None:
        """The core system's full file, cut ``back_minutes`` ago (before or after payments)."""
        self._import({oid: row for oid, row in zip(OBLIGATIONS, rows, strict=True) if oid in listed},
                     back_minutes=back_minutes)

    def _import(self, rows: dict[str, tuple[int, int, int]], *, back_minutes: int) -> None:
        from chalicelib.services.imports import import_obligations

        cutoff = (self.clock.now - timedelta(minutes=back_minutes)).astimezone(COLOMBIA)
        lines = [HEADER]
        for oid, (due, min_pct, extra_pct) in rows.items():
            minimum, maximum = due * min_pct // 100, due + due * extra_pct // 100
            lines.append(f"{DOC};{oid};CREDITO;P-{oid};;2026-12-15;{due};{minimum};{maximum};"
                         f"{cutoff.isoformat()}")
        before = self._obligations()
        report = import_obligations(io.BytesIO(("\n".join(lines) + "\n").encode()),
                                    now=self.clock.now)
        accepted = []
        for oid, (due, min_pct, extra_pct) in rows.items():
            if oid not in self.cutoff or cutoff >= self.cutoff[oid]:
                self.core[oid] = (due, due * min_pct // 100, due + due * extra_pct // 100)
                self.cutoff[oid] = cutoff
                accepted.append(oid)
        assert report.present == len(accepted) and report.rejected == len(rows) - len(accepted)
        after = self._obligations()
        for oid in accepted:
            assert after[oid].status == "OPEN"
        for oid in set(rows) - set(accepted):  # a stale row: stamped, nothing else
            assert after[oid].status == before[oid].status
        if not accepted:
            assert report.closed == 0
            return
        held = 0
        for oid, item in after.items():
            if oid in rows:
                continue
            if before[oid].status == "OPEN" and item.pending_payment_id:
                assert item.status == "OPEN"
                held += 1
            else:
                assert item.status == "CLOSED", oid
        assert len(report.not_closed) == held
        for label, count in (("closed an obligation", report.closed),
                             ("kept a locked obligation open", held),
                             ("rejected a stale row", len(rows) - len(accepted)),
                             ("confirmed a portal payment (core applied)", report.applied_in_core)):
            if count:
                event(f"import {label}")
        self.clock.advance(minutes=1)

    @rule(which=st.integers(0, len(OBLIGATIONS) - 1), share=st.integers(0, 100))
    def start_payment(self, which: int, share: int) -> None:
        from chalicelib.domain.errors import DomainError
        from chalicelib.services import payments

        obligation = self._obligations().get(OBLIGATIONS[which])
        if obligation is None:
            return
        low, high = max(int(obligation.minimum_amount), 1500), int(obligation.maximum_amount)
        if high < low:
            return  # nothing left to pay on it
        amount = low + (high - low) * share // 100
        self.keys += 1
        try:
            started = payments.start_payment(
                self.ctx, document_number=DOC, items=[(obligation.obligation_id, amount)],
                bank_code="1022", person_type="natural", idempotency_key=f"k-{self.keys}",
                ip="190.25.1.2")
        except DomainError as refused:
            event(f"payment refused: {type(refused).__name__}")
            return  # closed, locked by another payment, amount out of range
        event("payment started")
        self.payments.append((started.id, started.reference))

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 3), outcome=st.sampled_from(["APPROVED", "APPROVED", "REJECTED"]))
    def bank_decides(self, index: int, outcome: str) -> None:
        """The payer approves (or the bank rejects) at the bank, and no event arrives: only a
        status query (the poller) learns it."""
        picked = self._pick(index)
        if picked is None:
            return
        transaction = self.gateway.find_by_reference(picked[1])
        if transaction is not None and transaction.status == "PENDING":
            self.gateway.settle(picked[1], outcome)

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 3), outcome=st.sampled_from(["APPROVED", "APPROVED", "REJECTED", None]),
          times=st.integers(1, 2), stale_after=st.booleans())
    def notification(self, index: int, outcome: str | None, times: int, stale_after: bool) -> None:
        """The bank decides (if it had not) and the gateway's event arrives, possibly repeated,
        possibly followed by an older one (PENDING) delivered out of order."""
        from chalicelib.services import payments

        picked = self._pick(index)
        if picked is None:
            return
        transaction = self.gateway.find_by_reference(picked[1])
        if transaction is None:
            return
        if outcome and transaction.status == "PENDING":
            transaction = self.gateway.settle(picked[1], outcome)
        body = self.gateway.event(picked[1], transaction.status, at=self.clock.now)
        outcomes = [payments.apply_gateway_event(self.ctx, {}, body) for _ in range(times)]
        assert outcomes[1:] in ([], ["duplicate"])
        event(f"notification {transaction.status}: {outcomes[0]}")
        if stale_after:
            self.clock.advance(seconds=1)
            payments.apply_gateway_event(self.ctx, {}, self.gateway.event(
                picked[1], "PENDING", at=self.clock.now))

    @rule(minutes=st.sampled_from([1, 8, 13, 30, 60]))
    def poll(self, minutes: int) -> None:
        """Time passes and the scheduled reconciliation runs (PSE's sonda)."""
        from chalicelib.services import payments

        self.clock.advance(minutes=minutes)
        report = payments.reconcile_pending(self.ctx)
        assert report.errors == 0
        if report.applied:
            event("poll applied a bank's decision")

    @rule()
    def export(self) -> None:
        from chalicelib.services import exports

        result = exports.export_approved(self.ctx, now=self.clock.now, requested_by="system:schedule")
        if result.payments:
            event("export with payments")
        self.clock.advance(minutes=1)

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def invariants(self) -> None:
        """All of them on one read of the state (moto is slow to answer)."""
        obligations, payments_by_id = self._obligations(), self._payments()
        self._balances_locks_and_applications(obligations, payments_by_id)
        self._exported_at_most_once(payments_by_id)

    def _balances_locks_and_applications(self, obligations: dict[str, Any],
                                         payments_by_id: dict[str, Any]) -> None:
        from chalicelib.domain.payments import OPEN_STATUSES

        for oid, item in obligations.items():
            amounts = (int(item.amount_due), int(item.minimum_amount), int(item.maximum_amount))
            assert min(amounts) >= 0, (oid, amounts)
            if item.pending_payment_id:
                holder = payments_by_id[item.pending_payment_id]
                assert holder.status in OPEN_STATUSES, (oid, holder.status)
                assert item.status == "OPEN"
            # Applied once: the core's last balance minus the portal payments still carried.
            carried = item.portal_payments.as_dict() if item.portal_payments else {}
            paid = sum(int(entry["amount"]) for entry in carried.values())
            core = self.core[oid]
            assert amounts == tuple(max(0, value - paid) for value in core), (oid, amounts, core, carried)
        for pid, payment in payments_by_id.items():
            for line in payment.items:
                obligation = obligations[line.obligation_id]
                carried = obligation.portal_payments.as_dict() if obligation.portal_payments else {}
                if payment.status != "APPROVED":
                    assert pid not in carried
                    assert payment.core_applied_at is None
                elif pid in carried:
                    assert int(carried[pid]["amount"]) == int(line.amount)
                else:  # dropped by an import: the core knew it, and the member sees it
                    assert payment.core_applied_at is not None, pid
                    assert payment.exported_at is not None
                    event("an approved payment was dropped by an import (core applied)")
                if payment.core_applied_at is not None:
                    assert payment.exported_at <= payment.core_applied_at

    def _exported_at_most_once(self, payments_by_id: dict[str, Any]) -> None:
        files = self._exported()
        counted = [ref for refs in files.values() for ref in refs]
        assert len(counted) == len(set(counted)), counted
        by_reference = {ref: key for key, refs in files.items() for ref in refs}
        for payment in payments_by_id.values():
            if payment.reference in by_reference:
                assert payment.status == "APPROVED"
                assert payment.export_id and payment.export_id in by_reference[payment.reference]
            else:  # not claimed by any export (approved ones wait in the export queue)
                assert payment.export_id is None and payment.exported_at is None


class BackOfficeOnPlacetoPay(BackOffice):
    """The same steps and invariants with a gateway whose own page chooses the bank (PlacetoPay's
    WebCheckout): payments carry no bank code, and are settled by its answers the same way."""

    GATEWAY = ("placetopay", True)


PROPERTY_SETTINGS = settings(max_examples=10, stateful_step_count=50, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestBackOffice = BackOffice.TestCase
TestBackOffice.settings = PROPERTY_SETTINGS
TestBackOfficeOnPlacetoPay = BackOfficeOnPlacetoPay.TestCase
TestBackOfficeOnPlacetoPay.settings = PROPERTY_SETTINGS
