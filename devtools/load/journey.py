"""One simulated member's payday, as a Locust user, and what the run remembers of it.

Each iteration: sign in (two steps, after a wrong password), list the obligations and banks, try
an amount under the minimum, pay (a double click: the same ``Idempotency-Key`` or a new one, in
turn), open the bank page, let the sandbox decide (approved, declined, failed,
left pending, notified twice, never notified, or notified out of order and then replayed), come
back from the bank, read the receipt and the history, sign out.

An answer the journey does not expect is counted by kind in :class:`RunState`; refusals that are
the right answer to a mistake are counted apart, as "expected".
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import gevent
from locust import HttpUser, task

from devtools.load.members import LoadMember

#: The bank's answer for a payment: (sandbox status, notify), weight. "out_of_order" is PENDING
#: then APPROVED, both events replayed afterwards, the older one last; "left" stays PENDING at
#: the bank until the run drains (the poller then learns the outcome).
OUTCOMES = (
    (("APPROVED", "once"), 36), (("APPROVED", "twice"), 14), (("APPROVED", "none"), 8),
    (("DECLINED", "once"), 13), (("ERROR", "once"), 5), (("PENDING", "left"), 12),
    (("APPROVED", "out_of_order"), 12),
)
BANK_STATUS_TO_PAYMENT = {"APPROVED": "APPROVED", "DECLINED": "REJECTED", "ERROR": "FAILED",
                          "VOIDED": "REJECTED"}
GATEWAY_MINIMUM = 1500


#: Seconds a member spends reading a page, at the bank (signing in there with the bank's own
#: credentials, confirming) and before coming back, times ``RunState.pace``: a visit (16
#: requests) takes about 2.5 minutes plus the answers' time, the next one starts 2 to 5 minutes
#: later. About 0.045 requests a second per member: 200 members offer some 9 a second, what the
#: local stack serves on 2 shared cores (README "Load test").
READING = (5.0, 15.0)
AT_THE_BANK = (60.0, 150.0)
BETWEEN_VISITS = (120.0, 300.0)


@dataclass
class RunState:
    """Shared by every simulated member of one run (gevent: no thread races, one lock anyway)."""

    members: list[LoadMember]
    passwords: dict[str, str]
    sandbox_url: str
    seed: int
    payments: dict[str, str] = field(default_factory=dict)  # payment id -> reference
    problems: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    late_webhooks: int = 0  # deliveries the sandbox stopped waiting for (5 s)
    pace: float = 1.0  # multiplies every pause (0.1: ten times the requests per member)
    one_address: bool = False  # every member from 127.0.0.1: the per-IP throttles trip
    hurry: bool = False  # the load is over: members end their journey without reading pages
    _next: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_member(self) -> tuple[int, LoadMember]:
        with self._lock:
            index = next(self._next) % len(self.members)
        return index, self.members[index]

    def problem(self, kind: str) -> None:
        with self._lock:
            self.problems[kind] += 1

    def count_delivery(self, delivery: dict[str, Any]) -> None:
        """A webhook the sandbox sent: a 5xx counts as one; giving up after its 5 s timeout is
        only reported (the app still applies the event, and the poller is the safety net)."""
        status = int(delivery.get("http_status") or 0)
        with self._lock:
            if status >= 500:
                self.server_errors += 1
                self.problems[f"webhook from the sandbox: server error {status}"] += 1
            elif status == 0:
                self.late_webhooks += 1
            elif status != 200:
                self.problems[f"webhook from the sandbox: unexpected {status}"] += 1

    def right_refusal(self, kind: str) -> None:
        with self._lock:
            self.expected[kind] += 1


def error_kind(step: str, response: Any) -> str:
    """How an unexpected answer is counted: connection errors, 5xx, throttling, other codes."""
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 0:
        error = getattr(response, "error", None)
        return f"{step}: connection error ({type(error).__name__ if error else 'none'})"
    code = ""
    try:
        code = str(response.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        code = ""
    label = "throttled" if status == 429 else "server error" if status >= 500 else "unexpected"
    return f"{step}: {label} {status}{f' {code}' if code else ''}"


def _pick_amount(rng: random.Random, obligation: dict[str, Any]) -> int:
    due, low, high = (int(obligation[k]) for k in ("amount_due", "minimum_amount", "maximum_amount"))
    choices = [a for a in (due, low) if a >= max(low, 1)]
    other = min(high, max(low, 1) + rng.randint(1_000, 40_000))
    return rng.choice([*choices, other])


class PayingMember(HttpUser):
    """A member paying on payday. ``environment.load_state`` is the run's :class:`RunState`."""

    def wait_time(self) -> float:
        return 0.0 if self.state.hurry else self.rng.uniform(*BETWEEN_VISITS) * self.state.pace

    def on_start(self) -> None:
        self.state: RunState = self.environment.load_state  # type: ignore[attr-defined]
        self.index, self.member = self.state.next_member()
        # A seeded simulation, not a secret.
        self.rng = random.Random(self.state.seed * 100_003 + self.index)  # noqa: S311  # nosec B311
        self.iteration = 0
        self.accepted: list[str] = []  # the gateway's consent documents, accepted on each payday
        self.ip = {} if self.state.one_address else {"X-Forwarded-For": self.member.ip}
        # The session cookie is sent by hand: one member, one session, whatever the host name.
        self.client.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    # --- plumbing -------------------------------------------------------------------------------

    def call(self, step: str, method: str, url: str, expected: tuple[int, ...], *,
             body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """One request; answers outside ``expected`` are counted by kind; returns the response."""
        with self.client.request(method, url, name=step, json=body, headers=headers,
                                 catch_response=True, timeout=120) as response:
            if response.status_code in expected:
                response.success()
            else:
                response.failure(error_kind(step, response))
                self.state.problem(error_kind(step, response))
            return response

    def think(self, span: tuple[float, float] = READING) -> None:
        pause = self.rng.uniform(*span) * self.state.pace
        if not self.state.hurry:
            gevent.sleep(pause)

    # --- the journey ----------------------------------------------------------------------------

    @task
    def payday(self) -> None:
        self.iteration += 1
        auth = self.sign_in()
        if auth is None:
            return
        self.think()
        listed = self.call("obligations", "GET", "/api/v1/obligations", (200,), headers=auth)
        self.think()
        banks = self.call("banks", "GET", "/api/v1/banks", (200,), headers=auth)
        terms = self.call("payment terms", "GET", "/api/v1/payment-terms", (200,), headers=auth)
        # The member reads and accepts the gateway's documents on the summary page.
        self.accepted = ([d["id"] for d in terms.json()["documents"]]
                         if terms.status_code == 200 else [])
        if listed.status_code == 200 and banks.status_code == 200 and banks.json()["banks"]:
            free = [o for o in listed.json()["obligations"]
                    if not o["pending_payment_id"] and int(o["maximum_amount"]) > 0]
            bank = self.rng.choice(banks.json()["banks"])["code"]
            self.under_minimum(auth, free, bank)
            self.think()
            payment = self.pay_with_a_double_click(auth, free, bank)
            if payment is not None:
                self.at_the_bank(auth, payment)
        self.think()
        self.call("history", "GET", "/api/v1/payments", (200,), headers=auth)
        self.call("logout", "DELETE", "/api/v1/session", (204,), headers=auth)

    def sign_in(self) -> dict[str, str] | None:
        """Two steps, after one wrong password; the headers of the signed-in member."""
        document = {"document_number": self.member.document_number}
        for password, step, expected in (("no es la clave de este asociado", "login (wrong password)",
                                          (401,)),
                                         (self.state.passwords[self.member.document_number],
                                          "login", (201,))):
            identify = self.call("identify", "POST", "/api/v1/session/identify", (200,),
                                 body=document, headers=self.ip)
            if identify.status_code != 200:
                return None
            login = self.call(step, "POST", "/api/v1/session", expected, headers=self.ip,
                              body={"login_ticket": identify.json()["login_ticket"],
                                    "password": password})
            if login.status_code != expected[0]:
                return None
            if expected == (401,):
                self.state.right_refusal("wrong password -> 401 invalid_credentials")
        session = next((f"{c.name}={c.value}" for c in login.cookies
                        if c.name.endswith("sv_session")), None)
        if session is None:
            self.state.problem("login: no session cookie")
            return None
        return {**self.ip, "Cookie": session, "X-CSRF-Token": login.json()["csrf_token"]}

    def under_minimum(self, auth: dict[str, str], free: list[dict[str, Any]], bank: str) -> None:
        if not free:
            return
        target = self.rng.choice(free)
        amount = max(int(target["minimum_amount"]) - 1, 1)
        if amount >= GATEWAY_MINIMUM and amount >= int(target["minimum_amount"]):
            amount = GATEWAY_MINIMUM - 1
        answer = self.call("pay (under the minimum)", "POST", "/api/v1/payments", (400,),
                           headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                           body={"items": [{"obligation_id": target["id"], "amount": amount}],
                                 "bank_code": bank, "person_type": "natural",
                                 "accepted_documents": self.accepted})
        if answer.status_code == 400:
            code = answer.json()["error"]["code"]
            if code == "invalid_amount":
                self.state.right_refusal("under the minimum -> 400 invalid_amount")
            else:
                self.state.problem(f"pay (under the minimum): 400 {code}")

    def pay_with_a_double_click(self, auth: dict[str, str], free: list[dict[str, Any]],
                                bank: str) -> dict[str, Any] | None:
        """Two submissions at once; the same key must give one payment, a new key a 409."""
        chosen = self.rng.sample(free, k=min(len(free), self.rng.choice((1, 1, 2))))
        items = [{"obligation_id": o["id"], "amount": _pick_amount(self.rng, o)} for o in chosen]
        if sum(i["amount"] for i in items) < GATEWAY_MINIMUM:
            return None
        body = {"items": items, "bank_code": bank, "person_type": "natural",
                "accepted_documents": self.accepted}
        same_key = (self.index + self.iteration) % 2 == 1  # half the members start with each
        keys = [uuid.uuid4().hex] * 2 if same_key else [uuid.uuid4().hex, uuid.uuid4().hex]
        second = "pay (double click, same key)" if same_key else "pay (double click, new key)"
        jobs = [gevent.spawn(self.call, step, "POST", "/api/v1/payments", (201, 409), body=body,
                             headers={**auth, "Idempotency-Key": key})
                for step, key in (("pay", keys[0]), (second, keys[1]))]
        gevent.joinall(jobs)
        answers = [job.value for job in jobs]
        created = [a.json()["payment"] for a in answers if a is not None and a.status_code == 201]
        refused = [a.json()["error"]["code"] for a in answers if a is not None and a.status_code == 409]
        if same_key and len(created) == 2 and created[0]["id"] == created[1]["id"]:
            self.state.right_refusal("double click, same key -> the same payment twice")
        elif not same_key and len(created) == 1 and len(refused) == 1:
            self.state.right_refusal(f"double click, new key -> 409 {refused[0]}")
        else:
            self.state.problem(f"{second}: {len(created)} created ({len({p['id'] for p in created})}"
                               f" distinct), refused {refused}")
        if not created:
            return None
        payment = next((p for p in created if p.get("redirect_url")), created[0])
        with self.state._lock:
            self.state.payments[payment["id"]] = payment["reference"]
        return payment

    def at_the_bank(self, auth: dict[str, str], payment: dict[str, Any]) -> None:
        """The bank page, the bank's answer (and its events), the way back, the receipt."""
        sandbox = self.state.sandbox_url
        if not payment.get("redirect_url"):  # the gateway did not answer in time: no bank page
            self.state.right_refusal("no bank URL yet (gateway slow) -> kept for the poller")
            self.call("receipt", "GET", f"/api/v1/payments/{payment['id']}", (200,), headers=auth)
            return
        self.call("bank page", "GET", payment["redirect_url"], (200,))
        self.think(AT_THE_BANK)
        (status, notify), = self.rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])
        self.state.outcomes[f"{status} {notify}"] += 1
        events = []
        for step_status, step_notify in ([("PENDING", "once"), ("APPROVED", "once")]
                                         if notify == "out_of_order" else
                                         [("PENDING", "once")] if notify == "left" else
                                         [(status, notify)]):
            answer = self.call("bank outcome (sandbox)", "POST", f"{sandbox}/_sandbox/outcome",
                               (200,), body={"reference": payment["reference"],
                                             "status": step_status, "notify": step_notify})
            if answer.status_code != 200:
                return
            events.append(answer.json()["event"])
            for delivery in answer.json().get("deliveries", []):
                self.state.count_delivery(delivery)
        for event in reversed(events) if notify == "out_of_order" else []:
            self.call("webhook (replayed, out of order)", "POST", "/webhooks/pse", (200,),
                      body=event)
        self.call("return from the bank", "GET", f"/pagos/{payment['id']}/retorno", (200,),
                  headers=auth)
        self.think()
        self.call("receipt", "GET", f"/api/v1/payments/{payment['id']}", (200,), headers=auth)
