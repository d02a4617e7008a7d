"""Measure 3: login time for an unknown vs a known member, bcrypt at the production cost 12.

Timed around the service call ``auth.login`` (moto in process, the tests' environment with
``BCRYPT_COST=12``), the identify step untimed. Each round runs the three kinds once, in a rotating
order, so drift hits them alike; every login comes from a new IP (the per-IP throttle never bites)
and the known member's wrong-password logins are separated by correct ones (at most 2 consecutive
failures, below the lockout threshold of 5): no setting is changed but the cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import env
from bench.report import Row, median, spread, within

ROUNDS = 17  # measured logins of each kind (>= 15)
WARMUP = 1  # discarded rounds (builds the dummy hash, warms moto and the code paths)
BUDGET = 0.10
COST = "12"
PASSWORD = "una clave larga de prueba 2026"
WRONG = "otra clave equivocada 2026"


def _kinds(ctx, member_document: str) -> dict[str, Callable[[], float]]:  # type: ignore[no-untyped-def]
    from chalicelib.domain.errors import InvalidCredentials
    from chalicelib.services import auth

    def timed(document: str, password: str, should_succeed: bool) -> Callable[[], float]:
        def once() -> float:
            ip = env.fresh_ip()
            ticket = auth.identify(ctx, document, ip=ip)
            started = time.perf_counter()
            try:
                auth.login(ctx, ticket, password, ip=ip)
                succeeded = True
            except InvalidCredentials:
                succeeded = False
            elapsed = time.perf_counter() - started
            if succeeded != should_succeed:
                raise RuntimeError(f"login of {document} {'succeeded' if succeeded else 'failed'}, "
                                   "which the measure did not expect (lockout or throttle?)")
            return elapsed
        return once

    return {
        "unknown member": timed(env.fresh_document(), PASSWORD, False),
        "known, wrong password": timed(member_document, WRONG, False),
        "known, correct password": timed(member_document, PASSWORD, True),
    }


def run() -> tuple[list[Row], list[str]]:
    from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
    from chalicelib.context import get_context

    with env.env_overrides(BCRYPT_COST=COST), env.aws(), env.bench_clock():
        ctx = get_context()
        if ctx.settings.bcrypt_cost != int(COST):
            raise RuntimeError(f"bcrypt cost is {ctx.settings.bcrypt_cost}, not {COST}")
        member = env.make_member(password=PASSWORD)
        kinds = _kinds(ctx, member.document_number)
        names = list(kinds)
        samples: dict[str, list[float]] = {name: [] for name in names}
        with env.frozen_heap():
            for round_no in range(WARMUP + ROUNDS):
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    elapsed = kinds[name]()
                    if round_no >= WARMUP:
                        samples[name].append(elapsed)
        with DynamoUnitOfWork() as uow:
            after = uow.members.get(member.document_number)
        if after is None or after.locked_until is not None:
            raise RuntimeError("the known member got locked during the login measure")

    unknown = median(samples["unknown member"])
    section = "login time (bcrypt cost 12)"
    rows = [Row(f"login: {name}", spread(samples[name]), section=section) for name in names]
    for name in names[1:]:
        known = median(samples[name])
        diff = abs(unknown - known) / known
        rows.append(Row(f"login: unknown vs {name}, |diff|", f"{diff * 100:.1f} %",
                        f"<= {BUDGET * 100:.0f} %", within(diff, BUDGET), section=section))
    notes = [
        f"login time: BCRYPT_COST=12, median of {ROUNDS} calls of auth.login per kind (+{WARMUP} "
        "discarded round), moto in process, clock held still; each login from a new IP; "
        "wrong-password logins of the known member separated by correct ones (never more than 2 "
        "failures in a row, lockout threshold unchanged); |diff| = |unknown - known| / known; "
        "heap frozen before timing (gc.freeze, see bench.env.frozen_heap).",
    ]
    return rows, notes
