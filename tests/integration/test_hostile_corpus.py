"""The hostile-input corpus (``tests/hostile_corpus.py``: the Big List of Naughty Strings and the
penetration test's payloads) through every input the product has:

* every field of every form of the member pages (found by reading the forms the pages serve),
* every property of every JSON body and every query and header parameter of the OpenAPI
  document, the member API signed in, the staff API with its key,
* every path parameter of every route in ``app.routes``,
* every column of both core files (``members.csv``, ``obligations.csv``).

Invariants: no 5xx; no control character in any response header and no cookie attribute the app
never sets; no payload with markup echoed unescaped in a page; the core file's other rows still
imported and nothing stored with a control or direction character; the money untouched (balances
and payment statuses as before; an amount refused leaves its obligation as it was). The figures
(inputs x fields, requests) go to ``test-artifacts/hostile-corpus.txt``.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from chalicelib.domain import text
from tests.conftest import ARTIFACTS, ROOT
from tests.hostile_corpus import echo_problem, header_problems, payloads
from tests.page_support import FORM, Browser

DOC = "1020304050"
PASSWORD = "caballo bateria grapa correcta corpus"
STAFF = {"X-Api-Key": "local-staff-key", "X-Staff-User": "corpus"}
NOW_CUTOFF = "2026-11-22T00:00:00-05:00"

#: Every field gets these; the rest of the corpus is spread over each channel's fields (every
#: input once per channel), unless HOSTILE_CORPUS_FULL=1 asks for every input on every field.
CORE = ("x\r\nSet-Cookie: sv_session=attacker; Path=/", "abc; Domain=evil.example; Max-Age=99999",
        "=cmd|' /C calc'!A0", "+1+1", "@SUM(A1:A9)", "😀", "\u202eCOP 000.001\u202c", "a\x00b",
        "²", "١٠٠٠٠٠", "\"><img src=x onerror=alert(1)>", "A" * 5000)
FULL = os.environ.get("HOSTILE_CORPUS_FULL") == "1"


def plan(names: list[str]) -> Iterator[tuple[str, str]]:
    """``(field, payload)`` pairs: CORE on every field, every other input on one field (or all)."""
    corpus = payloads()
    rest = [p for p in corpus if p not in CORE]
    for name in names:
        for payload in CORE:
            yield name, payload
    for index, payload in enumerate(rest):
        for name in names if FULL else [names[index % len(names)]]:
            yield name, payload
FIGURES: dict[str, tuple[int, int, int]] = {}  # channel -> (inputs, fields, requests)
STATUSES: dict[str, dict[int, int]] = {}  # channel -> {HTTP status: answers}
VIOLATIONS: list[str] = []  # every other violation, for the figures


@dataclass
class Tally:
    channel: str
    inputs: int = 0
    fields: set[str] = field(default_factory=set)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def check(self, where: str, name: str, payload: str, response: Any) -> None:
        self.requests += 1
        self.statuses[response.status_code] += 1
        problems = []
        if response.status_code >= 500:
            problems.append(f"status {response.status_code}")
        problems += header_problems(response.headers)
        echo = echo_problem(payload, str(response.headers.get("Content-Type", "")), response.body)
        if echo:
            problems.append(echo)
        if problems:
            self.report(where, name, f"{text.shown(payload, 60)!r}: {'; '.join(problems)}")

    def report(self, where: str, name: str, problem: str) -> None:
        line = f"{self.channel} {where} [{name}] {problem}"
        self.violations.append(line)
        VIOLATIONS.append(line)

    def done(self) -> None:
        FIGURES[self.channel] = (self.inputs, len(self.fields), self.requests)
        STATUSES[self.channel] = dict(sorted(self.statuses.items()))
        _write_figures()
        assert self.requests or self.channel == "csv"
        assert not self.violations, "\n".join(self.violations[:40])


def _write_figures() -> None:
    inputs = max((i for i, _, _ in FIGURES.values()), default=0)
    lines = [f"{channel}: {i} inputs x {f} fields, {r} requests, statuses {STATUSES.get(channel)}"
             for channel, (i, f, r) in sorted(FIGURES.items())]
    summary = (f"hostile corpus: {inputs} inputs against {sum(f for _, f, _ in FIGURES.values())} "
               f"fields ({sum(r for _, _, r in FIGURES.values())} requests or CSV rows); "
               f"{len(VIOLATIONS)} violations")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hostile-corpus.txt").write_text("\n".join([summary, *lines]) + "\n", "utf-8")
    print("\n" + summary, file=sys.stderr)


# --- the stage ---------------------------------------------------------------------------------

@pytest.fixture
def corpus_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttles out of the way (before the context exists): every input must reach its handler."""
    for name in ("RATE_IDENTIFY", "RATE_LOGIN", "RATE_RECOVERY"):
        monkeypatch.setenv(name, "100000000")
    monkeypatch.setenv("LOCKOUT_THRESHOLD", "100000000")


@dataclass
class Stage:
    client: Any
    member: Browser
    anonymous: Browser
    payment_id: str
    csrf: str

    def money(self) -> dict[str, Any]:
        from chalicelib.adapters.dynamo.models import Obligation, Payment

        balances = {(o.document_number, o.obligation_id): (int(o.amount_due), int(o.minimum_amount),
                                                          int(o.maximum_amount), o.status)
                    for o in Obligation.scan()}
        statuses = {p.payment_id: (p.status, int(p.amount)) for p in Payment.scan()}
        return {"balances": balances, "approved": {k: v for k, v in statuses.items() if v[0] == "APPROVED"}}


def sign_in(client: Any) -> Browser:
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    response = browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    assert response.status_code in (302, 303), response.body[:300]
    return browser


@pytest.fixture
def stage(corpus_env, client, ctx, make_member, make_obligation, gateway, clock) -> Stage:  # type: ignore[no-untyped-def]
    from chalicelib.services import payments
    from tests.payment_support import start

    make_member(DOC, password=PASSWORD)
    make_obligation("APO-1", type="APORTE", amount_due=80_000, minimum_amount=80_000, maximum_amount=80_000)
    make_obligation("CRE-1", amount_due=850_000, minimum_amount=850_000, maximum_amount=12_400_000)
    make_obligation("AHO-1", type="AHORRO", amount_due=50_000, minimum_amount=10_000, maximum_amount=900_000)
    started = start(ctx, items=[("APO-1", 80_000)])
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    member = sign_in(client)
    page = member.get("/obligaciones").body.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    anonymous = Browser(client)
    anonymous.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")  # a login ticket
    return Stage(client, member, anonymous, started.id, csrf)


# --- forms -------------------------------------------------------------------------------------

class _Forms(HTMLParser):
    """``(action, {name: default value})`` of every POST form of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self.forms.append((a.get("action", ""), {}))
        elif not self.forms or "name" not in a:
            if tag == "option" and self._select and self.forms:
                self.forms[-1][1].setdefault(self._select, a.get("value", ""))
            return
        elif tag in ("input", "textarea", "button"):
            if a.get("type") in ("checkbox", "radio") and a["name"] in self.forms[-1][1]:
                return
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms_of(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def member_forms(stage: Stage) -> dict[str, tuple[Browser, dict[str, str]]]:
    """Every form the pages serve, with the browser (signed in or not) that sees it."""
    found: dict[str, tuple[Browser, dict[str, str]]] = {}
    pages = [(stage.member, "/inicio"), (stage.member, "/obligaciones"), (stage.member, "/pagos"),
             (stage.member, f"/pagos/{stage.payment_id}"), (stage.anonymous, "/ingresar"),
             (stage.anonymous, "/ingresar/clave"), (stage.anonymous, "/recuperar")]
    recovering = Browser(stage.client)
    recovering.jar["sv_recovery"] = "x" * 43  # the form only needs the cookie to show
    pages.append((recovering, "/cambiar-clave"))
    for browser, path in pages:
        html = browser.get(path).body.decode()
        for action, fields in forms_of(html):
            found.setdefault(action, (browser, fields))
    obligations = found["/pagos/resumen"][1]
    obligations.update({"pagar": "CRE-1", "opcion_CRE-1": "otro", "otro_CRE-1": "900000"})
    chosen = stage.member.post("/pagos/resumen", obligations)  # post/redirect/get
    summary = stage.member.get(chosen.headers["Location"]).body.decode()
    for action, fields in forms_of(summary):
        found.setdefault(action, (stage.member, fields))
    found["/avisos/cancelar"] = (stage.anonymous, {"token": "x", "accion": "cancelar"})
    return found


def test_every_form_field(stage: Stage) -> None:
    tally = Tally("form", inputs=len(payloads()))
    forms = member_forms(stage)
    assert set(forms) >= {"/ingresar", "/ingresar/clave", "/recuperar", "/cambiar-clave", "/pagos/resumen",
                          "/pagos", "/salir", "/preferencias", "/avisos/cancelar"}
    before = stage.money()
    targets = [f"{action} {name}" for action, (_, defaults) in forms.items() for name in defaults]
    for target, payload in plan(targets):
        action, name = target.split(" ", 1)
        browser, defaults = forms[action]
        tally.fields.add(target)
        response = stage.client.http.post(action, headers={**FORM, **browser._cookie()},
                                          body=urlencode({**defaults, name: payload}))
        tally.check(f"POST {action}", name, payload, response)
        if action == "/salir" and name != "csrf_token" and response.status_code in (302, 303):
            renew_session(stage, forms)  # a valid logout: sign in again for the next inputs
    after = stage.money()
    assert after["balances"] == before["balances"] and after["approved"] == before["approved"]
    tally.done()


def renew_session(stage: Stage, forms: dict[str, tuple[Browser, dict[str, str]]]) -> None:
    stage.member.jar.update(sign_in(stage.client).jar)
    stage.csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                           stage.member.get("/inicio").body.decode()).group(1)
    for browser, fields in forms.values():
        if browser is stage.member and "csrf_token" in fields:
            fields["csrf_token"] = stage.csrf


# --- the JSON API, query and header parameters -----------------------------------------------

def openapi() -> dict[str, Any]:
    return json.loads((ROOT / "chalicelib" / "openapi.json").read_text("utf-8"))


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


#: A sensible value per JSON property, so each request is refused (or taken) for the one field
#: that carries the payload.
DEFAULTS = {"document_number": DOC, "password": PASSWORD,
            "items": [{"obligation_id": "CRE-1", "amount": 900_000}], "bank_code": "1022",
            "person_type": "natural", "reason": "motivo del corpus",
            "action": "keep_pending", "token": "x" * 43, "temporary_key": "ABCDEFGH23",
            "new_password": "otra clave larga del corpus", "login_ticket": "x"}


#: Member API paths that answer 401 only when the session is gone (the others answer 401 to a
#: wrong password or ticket).
SIGNED_IN_ONLY = ("/api/v1/me", "/api/v1/obligations", "/api/v1/banks", "/api/v1/payments",
                  "/api/v1/payments/{payment_id}")


@dataclass
class Operation:
    method: str
    path: str
    body: list[str]  # JSON properties
    query: list[str]
    headers: list[str]

    @property
    def staff(self) -> bool:
        return self.path.startswith("/staff/")


def operations() -> list[Operation]:
    document = openapi()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            body = _schema(document, operation.get("requestBody", {}).get("content", {})
                           .get("application/json", {}).get("schema", {}))
            params = [_schema(document, p) for p in operation.get("parameters", [])]
            found.append(Operation(method.upper(), path, list(body.get("properties", {})),
                                   [p["name"] for p in params if p["in"] == "query"],
                                   [p["name"] for p in params if p["in"] == "header"]))
    return found


def concrete(stage: Stage, path: str) -> str:
    return (path.replace("{payment_id}", stage.payment_id).replace("{document_number}", DOC)
            .replace("{export_id}", "20261123-100000-abcdef"))


def api_headers(stage: Stage, operation: Operation) -> dict[str, str]:
    if operation.staff:
        return {**STAFF, "Content-Type": "application/json"}
    return {**stage.member._cookie(), "X-CSRF-Token": stage.csrf, "Content-Type": "application/json",
            "Idempotency-Key": "corpus-key", "Origin": "http://localhost:8000"}


def test_every_json_field_and_api_parameter(stage: Stage) -> None:
    tally = Tally("api", inputs=len(payloads()))
    ops = {f"{o.method} {o.path}": o for o in operations()}
    assert len(ops) >= 20
    targets = [f"{key}|{kind}:{name}" for key, o in ops.items()
               for kind, names in (("body", o.body), ("query", o.query), ("header", o.headers))
               for name in names]
    before = stage.money()
    for target, payload in plan(targets):
        key, spec = target.split("|")
        kind, name = spec.split(":", 1)
        operation = ops[key]
        tally.fields.add(target)
        path = concrete(stage, operation.path)
        headers = api_headers(stage, operation)
        body = {n: DEFAULTS.get(n, "x") for n in operation.body}
        if kind == "body":
            body[name] = payload
        elif kind == "query":
            path += "?" + urlencode({name: payload})
        else:
            headers[name] = payload.encode("utf-8", "surrogatepass").decode("latin-1", "replace")
        response = stage.client.http.request(operation.method, path, headers=headers,
                                             body=json.dumps(body).encode() if operation.body else b"")
        tally.check(key, f"{kind}:{name}", payload, response)
        if response.status_code == 401 and operation.path in SIGNED_IN_ONLY and kind != "header":
            renew_session(stage, {})  # the session ended (never expected): sign in again
    after = stage.money()
    assert after["balances"] == before["balances"] and after["approved"] == before["approved"]
    tally.done()


#: The pages' own query parameters (not in the OpenAPI document).
PAGE_QUERIES = (("/cambiar-clave", "token"), ("/salida", "motivo"), ("/avisos/cancelar", "token"),
                ("/ingresar", "volver"), ("/obligaciones", "x"), ("/pagos/{payment_id}/retorno", "id"))


def test_every_page_query_parameter(stage: Stage) -> None:
    tally = Tally("query", inputs=len(payloads()))
    targets = [f"{path}?{name}" for path, name in PAGE_QUERIES]
    for target, payload in plan(targets):
        path, name = target.split("?")
        tally.fields.add(target)
        response = stage.client.http.get(f"{concrete(stage, path)}?{urlencode({name: payload})}",
                                         headers=stage.member._cookie())
        tally.check(f"GET {path}", name, payload, response)
    tally.done()


# --- path parameters -----------------------------------------------------------------------------

def test_every_path_parameter(stage: Stage) -> None:
    from app import app

    tally = Tally("path", inputs=len(payloads()))
    targets = [f"{method} {path}" for path, entries in app.routes.items() if "{" in path
               for method in entries]
    assert len(targets) >= 10
    before = stage.money()
    for target, payload in plan(targets):
        method, path = target.split(" ", 1)
        tally.fields.add(target)
        encoded = quote(payload.encode("utf-8", "surrogatepass"), safe="")
        concrete_path = re.sub(r"\{[a-z_]+\}", encoded, path)
        headers = {**(STAFF if path.startswith("/staff/") else stage.member._cookie()),
                   "X-CSRF-Token": stage.csrf, "Origin": "http://localhost:8000"}
        body = b""
        if method == "POST" and path.startswith(("/staff/", "/api/")):
            headers["Content-Type"], body = "application/json", b'{"reason": "motivo del corpus"}'
        elif method == "POST":
            headers.update(FORM)
            body = urlencode({"csrf_token": stage.csrf}).encode()
        response = stage.client.http.request(method, concrete_path, headers=headers, body=body)
        tally.check(target, re.findall(r"\{([a-z_]+)\}", path)[0], payload, response)
    after = stage.money()
    assert after["balances"] == before["balances"] and after["approved"] == before["approved"]
    tally.done()


def test_deep_json_on_every_json_route(stage: Stage) -> None:
    """JSON nested 5,000 deep (10 KB) on every JSON route: a Spanish 400, never a 500."""
    tally = Tally("deep-json", inputs=2)
    ops = [o for o in operations() if o.method == "POST"] + [Operation("POST", "/webhooks/pse", [], [], [])]
    for operation in ops:
        for body in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000):
            tally.fields.add(operation.path)
            response = stage.client.http.request("POST", concrete(stage, operation.path),
                                                 headers=api_headers(stage, operation), body=body.encode())
            tally.check(f"POST {operation.path}", "body", body[:20], response)
    tally.done()


# --- both core files, every column ---------------------------------------------------------------

def csv_line(cells: list[str]) -> str:
    return ";".join('"' + c.replace('"', '""') + '"' for c in cells)


def test_every_column_of_both_core_files(stage: Stage) -> None:
    from chalicelib.adapters.dynamo.models import Member, Obligation
    from chalicelib.services import imports

    corpus = payloads()
    tally = Tally("csv", inputs=len(corpus))
    member = {"document_type": "CC", "document_number": "", "full_name": "Asociado Corpus",
              "email": "corpus@correo.example", "phone": "3001234567", "status": "ACTIVO"}
    obligation = {"document_number": DOC, "obligation_id": "", "type": "CREDITO",
                  "product_number": "0302024001876", "description": "Crédito del corpus",
                  "due_date": "2026-12-15", "amount_due": "850000", "minimum_amount": "850000",
                  "maximum_amount": "12400000", "cutoff": NOW_CUTOFF, "late_interest": "",
                  "fees": "", "insurance": "", "interest": "", "capital": "",
                  "opening_date": ""}
    before = stage.money()
    for kind, template, key in (("members", member, "document_number"),
                                ("obligations", obligation, "obligation_id")):
        columns = list(template)
        planned: dict[str, list[str]] = {}
        for column, payload in plan(columns):
            planned.setdefault(column, []).append(payload)
        for column in columns:
            tally.fields.add(f"{kind}.csv:{column}")
            rows, anchors = [], []
            for index, payload in enumerate(planned[column]):
                values = {**template, key: f"{7000000 + index}" if kind == "members" else f"H-{index}"}
                values[column] = payload
                rows.append(csv_line([values[c] for c in columns]))
            for anchor in range(2):
                values = {**template, key: f"{8000000 + anchor}" if kind == "members" else f"OK-{anchor}"}
                anchors.append(values[key])
                rows.insert(anchor * len(rows), csv_line([values[c] for c in columns]))
            data = io.BytesIO(("\n".join([";".join(columns), *rows]) + "\n").encode("utf-8", "surrogatepass"))
            run = imports.import_members if kind == "members" else imports.import_obligations
            options = {} if kind == "members" else {"full": False}
            report = run(data, now=stage_now(), **options)
            tally.requests += report.rows
            where = f"{kind}.csv"
            if report.file_error:
                tally.report(where, column, f"file error {report.file_error}")
            model = Member if kind == "members" else Obligation
            stored = [model.get(a) if kind == "members" else model.get(DOC, a) for a in anchors]
            if len(stored) != 2:
                tally.report(where, column, "an anchor row was lost")
            for _, reason in report.errors:
                if any(text.forbidden(c) for c in reason):
                    tally.report(where, column, f"raw control character in a report line: {reason[:80]!r}")
    # Hostile amounts aimed at obligations that exist: refused, their balances stay as they were.
    for index in range(len(CORE)):
        Obligation(DOC, f"M-{index}", type="CREDITO", product_number="0302024001876",
                   description="Crédito", due_date="2026-12-15", amount_due=850_000,
                   minimum_amount=850_000, maximum_amount=12_400_000, status="OPEN",
                   cutoff=datetime.fromisoformat(NOW_CUTOFF)).save()
    columns = list(obligation)
    for column in ("amount_due", "minimum_amount", "maximum_amount", "capital"):
        rows = [csv_line([{**obligation, "obligation_id": f"M-{i}", column: payload}[c] for c in columns])
                for i, payload in enumerate(CORE)]
        data = io.BytesIO(("\n".join([";".join(columns), *rows]) + "\n").encode("utf-8"))
        report = imports.import_obligations(data, now=stage_now(), full=False)
        tally.requests += report.rows
        if report.rejected != len(CORE):
            tally.report("obligations.csv", column, f"{len(CORE) - report.rejected} hostile amounts taken")
        for i in range(len(CORE)):
            kept = Obligation.get(DOC, f"M-{i}")
            if (kept.amount_due, kept.minimum_amount, kept.maximum_amount) != (850_000, 850_000, 12_400_000):
                tally.report("money", column, f"M-{i} changed by {text.shown(CORE[i])!r}")
    for item in [*Member.scan(), *Obligation.scan()]:
        for name in ("full_name", "description", "obligation_id", "product_number", "email", "phone"):
            value = getattr(item, name, None)
            if value and any(text.forbidden(c) for c in value):
                tally.report("stored", name, f"{text.shown(value, 60)!r} stored with a control character")
        for name in ("obligation_id", "product_number"):
            value = getattr(item, name, None)
            if value and not text.is_identifier(value):
                tally.report("stored", name, f"{text.shown(value, 60)!r} stored outside the strict set")
    after = stage.money()
    for key, balance in before["balances"].items():
        if after["balances"].get(key) != balance:
            tally.report("money", "balances", f"{key} changed: {balance} -> {after['balances'].get(key)}")
    tally.done()


def stage_now():  # type: ignore[no-untyped-def]
    from chalicelib.context import Runtime

    return Runtime.clock()

