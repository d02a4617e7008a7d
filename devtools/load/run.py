"""The payday load test, start to end: stack, members, first access, load, drain, invariants.

1. The stack: the one ``make run`` starts (``--app-url`` and the other URLs), or by default its own
   on free ports (:func:`devtools.run_local.start_stack`) with :data:`LOAD_ENV` and the
   serialized moto server in a process of its own.
2. The members: generated for the run (:mod:`devtools.load.members`) and loaded through the
   core-file import (the runner's demo loader for its own stack, ``devtools.import_cli`` for a
   given one), then activated the way members are: recovery email (outbox), temporary key, new
   password.
3. The load: Locust users (:class:`devtools.load.journey.PayingMember`), one per member, for
   ``--duration`` seconds; each member comes from its own address (``X-Forwarded-For``, which the
   local stage trusts), so the per-IP throttles keep their real limits.
4. The drain: the banks decide what they left pending, without notifying, so only the poller's
   status queries learn it; whatever is still open after ``--drain-seconds`` is re-queried by staff.
5. The checks (:mod:`devtools.load.invariants`) against DynamoDB, and the table
   (:mod:`devtools.load.report`), also written to ``test-artifacts/load/``.
Exit code 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import gevent
import psutil
import requests
from gevent.pool import Pool
from locust import events
from locust.env import Environment

from devtools.load import invariants, members, report
from devtools.load.journey import BANK_STATUS_TO_PAYMENT, PayingMember, RunState
from devtools.run_local import (
    ARTIFACTS,
    FAKE_CREDENTIALS,
    ROOT,
    free_port,
    local_stage_env,
    start_stack,
)

#: The load's own stack: bcrypt's cost is the tests' (login is bcrypt-bound on 2 cores, see the
#: README; ``--bcrypt-cost 12`` measures the product's), and the poller is due every 45 s instead of
#: PSE's 7 and 12 minutes, so it runs during a 5-minute peak, and a payment that never reached the
#: gateway expires after 90 s instead of 30 minutes (the drain waits for it). The throttles keep
#: their defaults.
LOAD_ENV = {"RECOVERY_RESPONSE_FLOOR_MS": "0", "POLL_FIRST_SECONDS": "45",
            "POLL_EVERY_SECONDS": "45", "CREATED_EXPIRY_SECONDS": "90",
            "REMINDER_DAYS_BEFORE_DUE": "-1"}
POLL_INTERVAL = 30.0
STAFF_KEY = "local-staff-key"
COLOMBIA = timezone(timedelta(hours=-5))
OUT = ARTIFACTS / "load"
#: The simulated members' password on the local stack (not a secret).
PASSWORD = "quincena de diciembre {tag} en la cooperativa"  # noqa: S105  # nosec B105


@dataclass
class Stack:
    app_url: str
    sandbox_url: str
    outbox_url: str
    moto_url: str
    stop: Any = None
    processes: dict[str, int] = field(default_factory=dict)  # what to sample: name -> pid


class CpuSampler:
    """Each process's CPU (% of one core) every ``every`` seconds: which one saturates first."""

    def __init__(self, processes: dict[str, int], every: float = 2.0) -> None:
        self.every = every
        self.samples: dict[str, list[float]] = {name: [] for name in processes}
        self._processes = {}
        for name, pid in processes.items():
            with contextlib.suppress(psutil.Error):
                self._processes[name] = psutil.Process(pid)
                self._processes[name].cpu_percent(None)
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        while True:
            gevent.sleep(self.every)
            for name, process in self._processes.items():
                with contextlib.suppress(psutil.Error):
                    self.samples[name].append(process.cpu_percent(None))

    def stop(self) -> dict[str, tuple[float, float]]:
        """name -> (mean, max) CPU % over the samples."""
        self._greenlet.kill()
        return {name: (sum(v) / len(v), max(v)) for name, v in self.samples.items() if v}


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.load",
                                     description="Payday load test against the local stack.")
    parser.add_argument("--users", type=int, default=int(_env("LOAD_USERS", "200")),
                        help="simulated members, one Locust user each (LOAD_USERS, 200)")
    parser.add_argument("--duration", type=float, default=float(_env("LOAD_DURATION", "300")),
                        help="seconds of load after the first user starts (LOAD_DURATION, 300)")
    parser.add_argument("--spawn-rate", type=float, default=float(_env("LOAD_SPAWN_RATE", "1")),
                        help="members arriving per second (LOAD_SPAWN_RATE, 1)")
    parser.add_argument("--pace", type=float, default=float(_env("LOAD_PACE", "1")),
                        help="multiplies the members' pauses (LOAD_PACE, 1; 0.2 = 5x the rate)")
    parser.add_argument("--one-address", action="store_true",
                        help="no X-Forwarded-For: every member from 127.0.0.1 (the per-IP "
                             "throttles then refuse most sign-ins with 429)")
    parser.add_argument("--bcrypt-cost", default=_env("LOAD_BCRYPT_COST", "4"),
                        help="BCRYPT_COST of the load's own stack (LOAD_BCRYPT_COST, 4)")
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=int(_env("LOAD_SEED", "7")))
    parser.add_argument("--app-url", default=os.environ.get("LOAD_APP_URL"),
                        help="a running `make run` (then also --sandbox-url, --outbox-url, --moto-url)")
    parser.add_argument("--sandbox-url", default=os.environ.get("LOAD_SANDBOX_URL"))
    parser.add_argument("--outbox-url", default=os.environ.get("LOAD_OUTBOX_URL"))
    parser.add_argument("--moto-url", default=os.environ.get("LOAD_MOTO_URL"))
    args = parser.parse_args(argv)
    given = [args.app_url, args.sandbox_url, args.outbox_url, args.moto_url]
    if any(given) and not all(given):
        parser.error("with --app-url give --sandbox-url, --outbox-url and --moto-url too")
    if args.users < 1 or args.duration <= 0 or args.spawn_rate <= 0 or args.pace < 0:
        parser.error("--users, --duration, --spawn-rate and --pace must be positive")
    return args


def _say(message: str) -> None:
    print(f"[load] {message}", flush=True)


# --- 1, 2: the stack and its members -------------------------------------------------------------

def _moto_process() -> tuple[subprocess.Popen[bytes], str]:
    """The serialized moto server in a process of its own (``make run`` keeps it in the runner's):
    the busiest part of the stack then does not share one interpreter with the sandbox and the
    poller."""
    url = f"http://127.0.0.1:{free_port()}"
    # Our own interpreter and module, fixed arguments, no shell.
    process = subprocess.Popen(  # noqa: S603  # nosec B603
        [sys.executable, "-m", "devtools.moto_server", "--port", url.rsplit(":", 1)[1]],
        cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{url}/moto-api/", timeout=2)
            return process, url
        gevent.sleep(0.2)
    process.kill()
    raise RuntimeError("the moto server did not start")


def _own_stack(folder: Path, bcrypt_cost: str) -> Stack:
    moto, moto_url = _moto_process()
    os.environ["AWS_ENDPOINT_URL"] = moto_url  # the runner uses this moto instead of its own
    try:
        handle = start_stack(port=0, demo_dir=folder, poll_interval=POLL_INTERVAL, timeout=300,
                             env_overrides={**LOAD_ENV, "BCRYPT_COST": str(bcrypt_cost)})
    except BaseException:
        moto.terminate()
        raise

    def stop() -> None:
        handle.stop()
        moto.terminate()
        moto.wait(timeout=20)

    processes = {"moto (serialized)": moto.pid, "runner (sandbox, outbox, poller)": handle.process.pid,
                 "chalice local (the app)": handle.chalice_pid or 0}
    return Stack(handle.app_url, str(handle.sandbox_url), handle.outbox_url, moto_url, stop=stop,
                 processes=processes)


def _import_into(stack: Stack, folder: Path) -> None:
    """The core-file import into a running stack's moto (a partial file: it closes nothing)."""
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": stack.moto_url}
    for kind, extra in (("members", []), ("obligations", ["--partial"])):
        # Our own interpreter and module, fixed arguments, no shell.
        done = subprocess.run(  # noqa: S603  # nosec B603
            [sys.executable, "-m", "devtools.import_cli", kind, str(folder / f"{kind}.csv"), *extra],
            cwd=str(ROOT), env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"import of {kind} failed ({done.returncode}):\n{done.stdout[-2000:]}")


def _point_at(stack: Stack) -> None:
    """This process reads the stack's tables (after the stack started: it must not inherit this)."""
    os.environ.update({**local_stage_env(), **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": stack.moto_url})


def first_access(stack: Stack, people: list[members.LoadMember], password: str) -> float:
    """Recovery email, temporary key, new password, for every member; seconds it took."""
    started = time.monotonic()
    http = requests.Session()
    pool = Pool(20)

    def ask(member: members.LoadMember) -> None:
        answer = http.post(f"{stack.app_url}/api/v1/recovery", timeout=120,
                           json={"document_number": member.document_number},
                           headers={"X-Forwarded-For": member.ip})
        if answer.status_code != 202:
            raise RuntimeError(f"recovery of {member.document_number}: {answer.status_code}")

    pool.map(ask, people)
    wanted = {m.email: m for m in people}
    found: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + 120
    while len(found) < len(wanted) and time.monotonic() < deadline:
        for message in http.get(f"{stack.outbox_url}/api/messages", timeout=120).json()["messages"]:
            to = next((a for a in message["to"] if a in wanted), None)
            token = re.search(r"cambiar-clave\?token=([A-Za-z0-9_\-]+)", message.get("html") or "")
            key = re.search(r">([A-Z2-9]{10})<", message.get("html") or "")
            if to and token and key and to not in found:
                found[to] = (token.group(1), key.group(1))
        if len(found) < len(wanted):
            gevent.sleep(1)
    if len(found) < len(wanted):
        raise RuntimeError(f"only {len(found)} of {len(wanted)} recovery emails arrived")

    def confirm(member: members.LoadMember) -> None:
        token, key = found[member.email]
        answer = http.post(f"{stack.app_url}/api/v1/recovery/confirm", timeout=120,
                           json={"token": token, "temporary_key": key, "new_password": password},
                           headers={"X-Forwarded-For": member.ip})
        if answer.status_code != 204:
            raise RuntimeError(f"first access of {member.document_number}: {answer.status_code} "
                               f"{answer.text[:200]}")

    pool.map(confirm, people)
    return time.monotonic() - started


# --- 3: the load -----------------------------------------------------------------------------------

def run_load(stack: Stack, state: RunState, users: int, spawn_rate: float,
             duration: float) -> tuple[Environment, float, dict[str, tuple[float, float]]]:
    env = Environment(user_classes=[PayingMember], host=stack.app_url, events=events,
                      stop_timeout=120)
    env.load_state = state  # type: ignore[attr-defined]

    def on_request(response: Any = None, **_: Any) -> None:
        if response is not None and int(getattr(response, "status_code", 0) or 0) >= 500:
            state.server_errors += 1

    events.request.add_listener(on_request)
    runner = env.create_local_runner()
    sampler = CpuSampler({**stack.processes, "load generator (Locust)": os.getpid()})
    started = time.monotonic()
    runner.start(users, spawn_rate=spawn_rate)
    gevent.sleep(duration)
    state.hurry = True  # each member ends the journey it is in (stop_timeout), then stops
    runner.quit()
    elapsed = time.monotonic() - started
    return env, elapsed, sampler.stop()


# --- 4: the drain ------------------------------------------------------------------------------

def bank_status(http: requests.Session, stack: Stack, reference: str) -> str | None:
    """The sandbox's last word on a reference (Wompi's search by reference), None if unknown."""
    answer = http.get(f"{stack.sandbox_url}/v1/transactions", params={"reference": reference},
                      headers={"Authorization": f"Bearer {os.environ['GATEWAY_PRIVATE_KEY']}"},
                      timeout=120)
    rows = answer.json().get("data", []) if answer.status_code == 200 else []
    return str(rows[0]["status"]) if rows else None


def drain(stack: Stack, documents: set[str], seconds: float) -> tuple[dict[str, int], dict[str, str | None]]:
    """Banks decide what they left pending (no event); the poller, then staff, settle the rest.

    Returns the drain's figures and, per payment, the status the bank's last word means."""
    http = requests.Session()
    decided = 0
    payments, _ = invariants.read_tables(documents)
    for payment in payments:
        if payment.status in invariants.OPEN and bank_status(http, stack, payment.reference) == "PENDING":
            status = "APPROVED" if decided % 2 == 0 else "DECLINED"
            answer = http.post(f"{stack.sandbox_url}/_sandbox/outcome", timeout=120, json={
                "reference": payment.reference, "status": status, "notify": "none"})
            decided += answer.status_code == 200
    deadline = time.monotonic() + seconds
    while True:
        http.post(f"{stack.outbox_url}/api/run-schedules", timeout=300)
        payments, _ = invariants.read_tables(documents)
        still_open = [p for p in payments if p.status in invariants.OPEN and not p.flagged]
        if not still_open or time.monotonic() > deadline:
            break
        gevent.sleep(5)
    for payment in still_open:
        http.post(f"{stack.app_url}/staff/v1/payments/{payment.payment_id}/requery", timeout=120,
                  headers={"X-Api-Key": STAFF_KEY, "X-Staff-User": "prueba-de-carga"})
    banks = {p.payment_id: BANK_STATUS_TO_PAYMENT.get(bank_status(http, stack, p.reference) or "")
             for p in payments}
    return ({"left pending by the bank, decided after the load": decided,
             "still open after the poller, re-queried by staff": len(still_open)}, banks)


# --- the whole run -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    now = datetime.now(UTC)
    today: date = now.astimezone(COLOMBIA).date()
    tag = (int(now.timestamp()) // 60) % 1000 if args.app_url else 0
    people = members.load_members(args.users, tag)
    folder = members.write_files(people, OUT / "data", today=today, now=now)
    password = PASSWORD.format(tag=tag)
    load_before = os.getloadavg()
    _say(f"{args.users} members, {args.duration:g} s; "
         f"{'loading them into ' + args.app_url if args.app_url else 'starting the stack'}...")
    stack = (Stack(args.app_url.rstrip("/"), args.sandbox_url.rstrip("/"),
                   args.outbox_url.rstrip("/"), args.moto_url.rstrip("/"))
             if args.app_url else _own_stack(folder, args.bcrypt_cost))
    try:
        if args.app_url:
            _import_into(stack, folder)
        _point_at(stack)
        setup = first_access(stack, people, password)
        _say(f"first access of {len(people)} members in {setup:.0f} s; load for "
             f"{args.duration:g} s...")
        state = RunState(members=people, passwords={m.document_number: password for m in people},
                         sandbox_url=stack.sandbox_url, seed=args.seed, pace=args.pace,
                         one_address=args.one_address)
        env, elapsed, cpu = run_load(stack, state, args.users, args.spawn_rate, args.duration)
        _say(f"load done in {elapsed:.0f} s; draining...")
        documents = {m.document_number for m in people}
        drained, banks = drain(stack, documents, args.drain_seconds)
        payments, obligations = invariants.read_tables(documents)
        checks = [*invariants.check_money(payments, obligations, members.starting_balances(people),
                                          banks, state.payments),
                  *invariants.check_answers(state.server_errors, state.problems)]
    finally:
        if stack.stop is not None:
            stack.stop()
    table = report.render(report.Figures(
        users=args.users, duration=elapsed, spawn_rate=args.spawn_rate, pace=args.pace,
        setup_seconds=setup,
        bcrypt_cost=None if args.app_url else str(args.bcrypt_cost), stats=env.stats,
        expected=state.expected, problems=state.problems, late_webhooks=state.late_webhooks,
        outcomes=state.outcomes,
        payments=payments, drained=drained, checks=checks,
        cpu=cpu, load_before=load_before, load_after=os.getloadavg()))
    print(table, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.txt").write_text(table, "utf-8")
    (OUT / "checks.json").write_text(json.dumps([c.__dict__ for c in checks], indent=2), "utf-8")
    return 0 if all(c.ok for c in checks) else 1
