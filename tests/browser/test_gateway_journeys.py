"""The same member journey through PlacetoPay's WebCheckout (the gateway chooses the bank), on a
stack of its own started as `GATEWAY=placetopay make run` starts it: a new user from the
obligations through the checkout page to an approved receipt, and a payment whose only
notification is lost, which the poller still brings to APPROVED."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, latest_email
from tests.browser.test_login_journey import first_access, sign_in
from tests.browser.test_member_journey import axe_at_both_widths
from tests.stack_support import DATA, TEST_ENV

PASSWORD = "frase larga para pagar con placetopay"
PEDRO, PEDRO_EMAIL = "1122334455", "pedro.ruiz@correo.example"
MARTA, MARTA_EMAIL = "1098765432", "marta.gomez@correo.example"


@pytest.fixture(scope="module")
def placetopay_stack(chromium_path: str) -> Iterator[object]:
    """PlacetoPay's stack; the poller runs only when a test asks (``run_schedules``), so a
    payment it settles was settled by the poller, and its first query is due at once."""
    from devtools.run_local import start_stack

    handle = start_stack(port=0, demo_dir=DATA, poll_interval=0,
                         env_overrides={**TEST_ENV, "GATEWAY": "placetopay", "POLL_FIRST_SECONDS": "0",
                                        "POLL_EVERY_SECONDS": "0"})
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def ptp_page(browser, placetopay_stack, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=placetopay_stack.app_url, locale="es-CO",
                                  viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def to_checkout(page, stack, document: str, email: str, obligation: str) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, document, email, PASSWORD)
    sign_in(page, document, PASSWORD)
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    page.locator("fieldset.obligation", has_text=obligation).get_by_label(
        re.compile("^Valor a pagar:")).check()
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
    # PlacetoPay's checkout page chooses the bank: no bank list here, and no consent boxes.
    expect(page.get_by_label("Banco")).to_have_count(0)
    expect(page.get_by_text("Su banco lo elige en la página de la pasarela de pagos")).to_be_visible()
    expect(page.get_by_role("checkbox")).to_have_count(0)
    page.get_by_label("Persona natural").check()
    page.get_by_role("button", name="Pagar con PSE").click()
    expect(page.get_by_role("heading", name="Pague con PSE")).to_be_visible()


def test_a_new_user_pays_through_placetopays_checkout(ptp_page, placetopay_stack) -> None:  # type: ignore[no-untyped-def]
    page = ptp_page
    to_checkout(page, placetopay_stack, PEDRO, PEDRO_EMAIL, "Aportes sociales noviembre")
    axe_at_both_widths(page, "checkout de PlacetoPay (sandbox)")
    page.get_by_label("Banco").select_option(index=1)
    page.get_by_role("button", name="Aprobar").click()
    expect(page.get_by_role("status")).to_contain_text("Aprobada")
    axe_at_both_widths(page, "comprobante PlacetoPay")
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    expect(page.locator("fieldset.obligation", has_text="Aportes sociales noviembre")).to_have_count(0)


def test_a_lost_notification_still_ends_approved_through_the_poller(ptp_page, placetopay_stack) -> None:  # type: ignore[no-untyped-def]
    page = ptp_page
    to_checkout(page, placetopay_stack, MARTA, MARTA_EMAIL, "Seguro de vida grupo")
    reference = page.locator("tr", has_text="Referencia").locator("td").inner_text()
    # The bank approves, and PlacetoPay's only notification never arrives (it never retries).
    control = urllib.request.Request(
        f"{placetopay_stack.sandbox_url}/_sandbox/outcome", method="POST",
        data=json.dumps({"reference": reference, "status": "APPROVED", "notify": "none"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(control, timeout=10) as answer:
        assert json.load(answer)["sent"] == 0
    page.goto("/pagos")  # the member never comes back through the return page
    row = page.locator("tbody tr", has_text=reference)
    expect(row).not_to_contain_text("Aprobada")
    placetopay_stack.run_schedules()  # the poller asks PlacetoPay
    page.reload()
    expect(page.locator("tbody tr", has_text=reference)).to_contain_text("Aprobada")
    # The receipt goes after the commit, from the events' stream (the runner reads it every second).
    deadline = time.monotonic() + 20
    while reference not in latest_email(placetopay_stack, MARTA_EMAIL)["html"]:
        assert time.monotonic() < deadline, "no receipt email after the poller's approval"
        time.sleep(0.5)
