"""WCAG 2.1 AA in Chromium: axe-core on every page of the site, at 1280 px and 360 px,
plus what axe cannot see: keyboard-only use, visible focus, text size controls with and without
JavaScript, no sideways scrolling with large text, and the session warning with the keyboard."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, accept_terms, latest_email
from tests.browser.test_login_journey import NEW_PASSWORD, first_access, sign_in

#: axe-core rules for WCAG 2.0 and 2.1, levels A and AA (Resolución MinTIC 1519 de 2020, Anexo 1).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
MARTA, MARTA_EMAIL = "1098765432", "marta.gomez@correo.example"
WIDTHS = {"escritorio": (1280, 900), "telefono": (360, 740)}


def axe_violations(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """Run axe-core in the page (Playwright's evaluate is not subject to the page's CSP)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                       "resultTypes": ["violations"]})
    return results.response["violations"]


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"  - {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = node["failureSummary"].replace("\n", " ")
            lines.append(f"      {', '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


class Audit:
    """Collects axe's findings and sideways scrolling page by page; asserts once at the end."""

    def __init__(self, page, label: str) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.label = label
        self.checked: list[str] = []
        self.failures: dict[str, str] = {}

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.checked.append(name)
        violations = axe_violations(self.page)
        if violations:
            self.failures[name] = f"{self.page.url}\n{describe(violations)}"
        width = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1] + 1:
            self.failures[f"{name} (reflow)"] = (
                f"{self.page.url}: scrolls sideways ({width[0]} > {width[1]} px)")

    def assert_clean(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        findings = {"checked": self.checked, "failures": self.failures}
        (ARTIFACTS / f"axe-{self.label}.json").write_text(
            json.dumps(findings, ensure_ascii=False, indent=2), "utf-8")
        report = "\n\n".join(f"{name}: {text}" for name, text in self.failures.items())
        assert not self.failures, f"axe-core / reflow findings at {self.label}:\n{report}"


@pytest.fixture
def sized_page(browser, stack, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    width, height = WIDTHS[request.param]
    context = browser.new_context(base_url=stack.app_url, locale="es-CO",
                                  viewport={"width": width, "height": height},
                                  is_mobile=width < 500, has_touch=width < 500)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"accessibility-{request.param}.png"), full_page=True)
    context.close()


def unsubscribe_token(document: str) -> str:
    from chalicelib.security.signing import Signer
    from devtools.run_local import local_stage_env

    signer = Signer(local_stage_env()["SIGNING_KEY"], "unsubscribe")
    return signer.sign({"d": document}, expires_at=int(time.time()) + 3600)


@pytest.mark.parametrize("sized_page", list(WIDTHS), indirect=True)
def test_every_page_has_no_axe_violations(sized_page, stack, request) -> None:  # type: ignore[no-untyped-def]
    page = sized_page
    label = request.node.callspec.params["sized_page"]
    audit = Audit(page, label)
    password = f"{NEW_PASSWORD} en {label}"  # the last 5 passwords cannot be reused

    # Before signing in.
    for path, name in (("/", "inicio"), ("/terminos", "términos"), ("/salida", "sesión cerrada"),
                       ("/salida?motivo=inactividad", "sesión cerrada por inactividad"),
                       ("/cambiar-clave", "enlace de recuperación no válido"),
                       ("/recuperar", "recuperar contraseña")):
        page.goto(path)
        audit.check(name)
    page.get_by_label("Número de documento").fill(MARTA)
    page.get_by_role("button", name="Enviar").click()
    expect(page.get_by_role("heading", name="Revise su correo")).to_be_visible()
    audit.check("correo de recuperación enviado")

    message = latest_email(stack, MARTA_EMAIL)
    key = re.search(r">([A-Z2-9]{10})<", message["html"]).group(1)
    link = re.search(r'href="([^"]*/cambiar-clave\?token=[^"]+)"', message["html"]).group(1)
    page.goto(link)
    expect(page.get_by_role("heading", name="Crear su contraseña")).to_be_visible()
    audit.check("crear contraseña")
    page.get_by_label("Clave temporal").fill("AAAAAAAAAA")
    page.get_by_label("Nueva contraseña", exact=True).fill("corta")
    page.get_by_label("Confirme la nueva contraseña").fill("otra")
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.get_by_label("Confirme la nueva contraseña")).to_have_attribute("aria-invalid", "true")
    audit.check("crear contraseña con errores")
    page.get_by_label("Clave temporal").fill(key)
    page.get_by_label("Nueva contraseña", exact=True).fill(password)
    page.get_by_label("Confirme la nueva contraseña").fill(password)
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.get_by_role("heading", name="Su contraseña fue actualizada")).to_be_visible()
    audit.check("contraseña actualizada")

    # The staged login, with its error states.
    page.goto("/ingresar")
    audit.check("ingreso paso 1")
    page.get_by_label("Usuario").fill("12ab")
    page.get_by_role("button", name="Siguiente").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("ingreso paso 1 con error")
    page.get_by_label("Usuario").fill(MARTA)
    page.get_by_role("button", name="Siguiente").click()
    audit.check("ingreso paso 2")
    page.get_by_label("Contraseña").fill("no es mi contraseña")
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("ingreso paso 2 con error")
    sign_in(page, MARTA, password)
    expect(page.get_by_role("heading", name=re.compile("^Hola, Marta"))).to_be_visible()
    audit.check("bienvenida")

    # What I owe, paying it, the receipt and the history.
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    audit.check("mis obligaciones")
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("alert")).to_contain_text("Elija cuánto pagar en al menos una obligación")
    audit.check("mis obligaciones con error")
    card = page.locator("fieldset.obligation", has_text="Crédito educativo")
    card.get_by_label("Otro valor (pesos)").fill("doce pesos")
    page.get_by_role("button", name="Continuar").click()
    expect(card.get_by_label("Otro valor (pesos)")).to_have_attribute("aria-invalid", "true")
    audit.check("otro valor con error")
    card.get_by_label("No pagar ahora").check()  # the typed text goes with it
    expect(card.get_by_label("Otro valor (pesos)")).to_have_value("")

    paying = "Aportes sociales noviembre" if label == "escritorio" else "Seguro de vida grupo"
    page.locator("fieldset.obligation", has_text=paying).get_by_label(re.compile("^Valor a pagar:")).check()
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
    audit.check("resumen del pago")
    # The other width's run paid already and its bank is remembered: back to no bank chosen.
    page.get_by_label("Banco").evaluate("el => { el.selectedIndex = 0; }")
    page.get_by_role("button", name="Pagar con PSE").click()  # no bank chosen: the error state
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("resumen del pago con error")
    page.get_by_label("Banco").select_option(label="Banco que aprueba")
    accept_terms(page)
    page.get_by_role("button", name="Pagar con PSE").click()
    expect(page).to_have_url(re.compile(r"/banco/"))
    page.get_by_role("button", name="Aprobar").click()
    expect(page.get_by_role("status")).to_contain_text("Aprobada")
    audit.check("comprobante (retorno del banco)")
    receipt_url = page.url.removesuffix("/retorno")
    page.goto(receipt_url)
    audit.check("comprobante")
    page.get_by_role("link", name="Mis pagos", exact=True).click()
    audit.check("mis pagos")

    # High contrast and the largest text on the busiest pages.
    page.get_by_role("button", name="Alto contraste").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bcontrast\b"))
    for _ in range(3):
        page.get_by_role("button", name=re.compile(r"^A\+")).click()
    with page.expect_response(lambda r: r.url.endswith("/preferencias")
                              and "nivel=3&alto=1" in (r.request.post_data or "")):
        page.get_by_role("button", name=re.compile(r"^A\+")).click()
    expect(page.locator("html")).to_have_class(re.compile(r"\btext-3\b"))
    page.reload()
    expect(page.locator("html")).to_have_class("text-3 contrast")
    audit.check("mis pagos, alto contraste, texto grande")
    page.goto(receipt_url)
    audit.check("comprobante, alto contraste, texto grande")
    page.goto("/obligaciones")
    audit.check("mis obligaciones, alto contraste, texto grande")
    page.get_by_role("button", name="Alto contraste").click()
    page.get_by_role("button", name="A (tamaño normal del texto)").click()
    expect(page.locator("html")).not_to_have_class(re.compile(r"contrast|text-"))

    # Errors, the reminders' unsubscribe pages, and the end of the session.
    page.goto("/pagos/" + "x" * 22)
    audit.check("página de error")
    page.goto(f"/avisos/cancelar?token={unsubscribe_token(MARTA)}")
    audit.check("cancelar recordatorios")
    page.get_by_role("button", name="Sí, no quiero recibir recordatorios").click()
    expect(page.get_by_role("status")).to_contain_text("no le enviaremos más recordatorios")
    audit.check("recordatorios cancelados")
    page.get_by_role("button", name=re.compile("quiero volver a recibirlos")).click()
    page.goto("/avisos/cancelar?token=no-sirve")
    audit.check("enlace de recordatorios no válido")
    page.goto("/inicio")
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", name="Su sesión se cerró")).to_be_visible()
    audit.check("después de cerrar sesión")

    assert len(audit.checked) >= 30
    audit.assert_clean()


# --- what axe cannot check ------------------------------------------------------------------------

FOCUS_STYLE = """el => { const s = getComputedStyle(el);
  return {outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
          shadow: s.boxShadow !== 'none'}; }"""


def tab_until(page, predicate: str, limit: int = 60) -> list[str]:  # type: ignore[no-untyped-def]
    """Press Tab until ``predicate`` (JS, on the focused element) holds; the names seen on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        name = page.evaluate("() => { const e = document.activeElement; "
                             "return (e.getAttribute('aria-label') || "
                             "e.innerText || e.value || e.name || e.id || e.tagName).trim(); }")
        seen.append(name)
        focus = page.evaluate("() => document.activeElement.matches('body') ? null : "
                              f"({FOCUS_STYLE})(document.activeElement)")
        assert focus and (focus["outline"] or focus["shadow"]), f"no visible focus on {name!r}"
        if page.evaluate(f"() => {{ const el = document.activeElement; return {predicate}; }}"):
            return seen
    raise AssertionError(f"never reached {predicate}; focus went through {seen}")


def test_a_member_pays_with_the_keyboard_alone(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "52123456", "luis.rodriguez@correo.example")
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Saltar al contenido")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # the skip link shows itself when focused
    page.keyboard.press("Enter")
    tab_until(page, "el.textContent.trim() === 'Ingresar'")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Usuario")).to_be_focused()  # autofocus on the only field
    page.keyboard.type("52123456")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Contraseña")).to_be_focused()
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Hola, Luis"))).to_be_visible()
    tab_until(page, "el.textContent.trim() === 'Ver y pagar mis obligaciones'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mis obligaciones")).to_be_visible()  # (Luis owes nothing)
    tab_until(page, "el.textContent.trim() === 'Mis pagos'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mis pagos")).to_be_visible()
    tab_until(page, "el.textContent.trim() === 'Cerrar sesión'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Su sesión se cerró")).to_be_visible()


def test_every_control_of_the_payment_form_is_reachable_by_tab(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "79555444", "carmen.diaz@correo.example")
    sign_in(page, "79555444", NEW_PASSWORD)
    page.goto("/obligaciones")
    wanted = page.evaluate("""() => [...document.querySelectorAll(
            'main input:not([type=hidden]), main button, main a[href]')]
        .filter(e => !e.disabled).map(e => e.id || e.textContent.trim())""")
    reached: set[str] = set()
    for _ in range(len(wanted) * 3 + 40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(
            "() => document.activeElement.id || document.activeElement.textContent.trim()"))
        if set(wanted) <= reached:
            break
    # Radio groups take one Tab stop each (arrows move inside): the checked radio stands for them.
    missing = [w for w in wanted if w not in reached
               and not re.match(r"^pagar-\d+-(minimum|other|none)$", w)]
    assert not missing, f"not reachable with Tab: {missing}"
    saving = page.locator("fieldset.obligation", has_text="Ahorro programado")
    saving.get_by_role("radio", name=re.compile("^Valor a pagar")).focus()
    page.keyboard.press("Space")
    expect(saving.get_by_role("radio", name=re.compile("^Valor a pagar"))).to_be_checked()
    page.keyboard.press("ArrowDown")
    expect(saving.get_by_label(re.compile("^Pago mínimo"))).to_be_checked()


def test_text_size_controls_with_and_without_javascript(page, browser, stack) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ingresar")
    field = page.get_by_label("Usuario")
    field.fill("1020")
    page.get_by_role("button", name=re.compile(r"^A\+")).click()
    html = page.locator("html")
    expect(html).to_have_class("text-1")
    assert field.input_value() == "1020" and page.url.endswith("/ingresar")  # nothing reloaded
    size = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert size == pytest.approx(16 * 1.15, abs=0.1)
    contrast = page.get_by_role("button", name="Alto contraste")
    with page.expect_response(re.compile(r"/preferencias$")):  # the background post sets the cookie
        contrast.click()
    expect(contrast).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(html).to_have_class("text-1 contrast")  # remembered by the server's cookie

    context = browser.new_context(base_url=stack.app_url, locale="es-CO", java_script_enabled=False)
    try:
        plain = context.new_page()
        plain.goto("/terminos")
        plain.get_by_role("button", name=re.compile(r"^A\+")).click()
        expect(plain).to_have_url(re.compile(r"/terminos$"))
        expect(plain.locator("html")).to_have_class("text-1")
        plain.get_by_role("button", name="Alto contraste").click()
        expect(plain.locator("html")).to_have_class("text-1 contrast")
        expect(plain.get_by_role("button", name="Alto contraste")).to_have_attribute("aria-pressed", "true")
    finally:
        context.close()


@pytest.mark.parametrize("width", [320, 640])
def test_largest_text_never_scrolls_sideways(browser, stack, width: int) -> None:  # type: ignore[no-untyped-def]
    """640 px is 1280 px at 200 % zoom; 320 px is WCAG 1.4.10's reflow width. With "A+" at 150 %."""
    context = browser.new_context(base_url=stack.app_url, locale="es-CO",
                                  viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.goto("/ingresar")
        for _ in range(3):
            page.get_by_role("button", name=re.compile(r"^A\+")).click()
        expect(page.locator("html")).to_have_class("text-3")
        for path in ("/", "/ingresar", "/recuperar", "/terminos", "/salida"):
            page.goto(path)
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert scroll <= inner + 1, f"{path} scrolls sideways at {width} px: {scroll}"
        page.screenshot(path=str(ARTIFACTS / f"texto-grande-{width}.png"), full_page=True)
    finally:
        context.close()


def test_the_session_warning_works_with_the_keyboard(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "80111222", "jorge.restrepo@correo.example", password=NEW_PASSWORD + " dos")
    page.clock.install()
    sign_in(page, "80111222", NEW_PASSWORD + " dos")
    expect(page.get_by_role("heading", name=re.compile("^Hola, Jorge"))).to_be_visible()
    idle = int(page.locator("body").get_attribute("data-idle-seconds"))
    assert 590 <= idle <= 600  # the session's own remaining time, from the server
    dialog = page.get_by_role("alertdialog", name="Su sesión está por terminar")
    expect(dialog).to_be_hidden()
    page.get_by_role("link", name="Mis pagos", exact=True).focus()
    page.clock.run_for((idle - 119) * 1000)
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Quedan")
    keep = dialog.get_by_role("button", name="Continuar en la sesión")
    expect(keep).to_be_focused()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "aviso-de-sesion.png"))
    violations = axe_violations(page)
    assert not violations, describe(violations)
    page.keyboard.press("Enter")  # keeps the session on the server...
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("link", name="Mis pagos", exact=True)).to_be_focused()  # ...focus goes back

    page.clock.run_for((idle - 119) * 1000)
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # Escape also keeps it
    expect(dialog).to_be_hidden()
    page.clock.run_for((idle + 5) * 1000)  # nobody answers: the page leaves before the server ends it
    expect(page).to_have_url(re.compile(r"/salida\?motivo=inactividad$"))
    expect(page.get_by_role("status")).to_contain_text("no tuvo actividad")


def test_axe_runs_under_the_sites_csp(page, stack) -> None:  # type: ignore[no-untyped-def]
    """The check itself works: a page with a known problem is reported (not a silent 0)."""
    page.goto("/")
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"data:,\">')")
    assert "image-alt" in [v["id"] for v in axe_violations(page)]
    assert page.evaluate("document.querySelector('script[src$=\"app.js\"]') !== null")
    csp = page.request.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
