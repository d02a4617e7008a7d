"""A member in Chromium pays through PSE: the local sandbox's bank page, the signed webhook, the
return page asking the gateway server-side, the receipt, the history and the balances."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, accept_terms, due_offset
from tests.browser.test_accessibility import axe_violations, describe
from tests.browser.test_login_journey import first_access, sign_in

# Its own password: the login journey may already have given NEW_PASSWORD to the same member,
# and the policy refuses the last five passwords.
PAY_PASSWORD = "frase distinta para pagar en linea"


def choose(page, obligations: dict[str, str | None]) -> None:  # type: ignore[no-untyped-def]
    """Choose each obligation (by description): its amount due, or the "other" amount typed
    (typing it chooses it), up to the summary."""
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    for description, other_amount in obligations.items():
        card = page.locator("fieldset.obligation", has_text=description)
        if other_amount:
            card.get_by_label("Otro valor (pesos)").fill(other_amount)
        else:
            card.get_by_label(re.compile("^Valor a pagar:")).check()
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()


def pay(page, bank: str = "Banco que aprueba") -> None:  # type: ignore[no-untyped-def]
    """From the summary to the bank page."""
    page.get_by_label("Banco").select_option(label=bank)
    page.get_by_label("Persona natural").check()
    accept_terms(page)
    page.get_by_role("button", name="Pagar con PSE").click()


def choose_and_pay(page, obligations: dict[str, str | None], bank: str = "Banco que aprueba") -> None:  # type: ignore[no-untyped-def]
    choose(page, obligations)
    pay(page, bank)


#: How the 1.000.000 paid to the credit (instalment 850.000) is applied, in the default order.
CREDIT_ALLOCATION = [("Intereses de mora", "$ 6.800"), ("Seguros", "$ 14.200"),
                     ("Intereses corrientes", "$ 186.000"), ("Capital", "$ 643.000"),
                     ("Abono extraordinario a capital", "$ 150.000"), ("Total", "$ 1.000.000")]


def allocation_rows(page, caption: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """The rows of the allocation table the caption names, as the accessibility tree has them."""
    table = page.get_by_role("table", name=caption)  # a substring of the caption
    expect(table).to_be_visible()
    return [(row.get_by_role("rowheader").inner_text(), row.get_by_role("cell").inner_text())
            for row in table.get_by_role("row").all() if row.get_by_role("rowheader").count()]


def assert_no_axe_violations(page, name: str) -> None:  # type: ignore[no-untyped-def]
    violations = axe_violations(page)
    assert not violations, f"{name}: {page.url}\n{describe(violations)}"


def test_pay_two_obligations_and_see_the_approved_receipt(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "1020304050", "ana.perez@correo.example", PAY_PASSWORD)
    sign_in(page, "1020304050", PAY_PASSWORD)
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    expect(page.get_by_text("Aportes sociales noviembre")).to_be_visible()
    expect(page.get_by_text(f"({-due_offset('CRE-88001')} días en mora)")).to_be_visible()

    credit = page.locator("fieldset.obligation", has_text="Crédito de libre inversión")
    credit.get_by_text("Detalle de la cuota", exact=True).click()  # a <details>: no script needed
    expect(credit.get_by_role("table", name=re.compile("Detalle de la cuota"))).to_contain_text("$ 186.000")

    choose(page, {"Aportes sociales noviembre": None,
                  "Crédito de libre inversión cuota 7/36": "1.000.000"})
    expect(page.get_by_role("heading", name="Así se aplicará su pago")).to_be_visible()
    expect(page.get_by_text("según el orden de aplicación de la cooperativa")).to_be_visible()
    assert allocation_rows(page, "Crédito de libre inversión cuota 7/36") == CREDIT_ALLOCATION
    expect(page.get_by_role("table", name=re.compile("Aportes sociales"))).to_have_count(0)  # no parts
    assert_no_axe_violations(page, "resumen con la aplicación del pago")
    page.screenshot(path=str(ARTIFACTS / "allocation-summary.png"), full_page=True)
    pay(page)
    expect(page).to_have_url(re.compile(r"/banco/"))  # the bank's page, full window
    expect(page.get_by_text("$ 1.080.000")).to_be_visible()
    page.get_by_role("button", name="Aprobar").click()

    expect(page.get_by_role("heading", name="Comprobante de pago")).to_be_visible()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Aprobada")
    receipt = page.locator("article.receipt")
    for text in ("NIT 900.123.456-7", "Banco que aprueba", "$ 1.080.000", "$ 80.000", "$ 1.000.000",
                 "Aportes sociales noviembre", "Crédito de libre inversión cuota 7/36"):
        expect(receipt).to_contain_text(text)
    cus = receipt.locator("dt:text-is('CUS') + dd").inner_text()
    assert cus and cus != "Aún no asignado"
    expect(page.get_by_role("link", name="Intentar de nuevo")).to_have_count(0)
    expect(receipt).to_contain_text("según el orden de aplicación de la cooperativa")
    assert allocation_rows(page, "Crédito de libre inversión cuota 7/36") == CREDIT_ALLOCATION
    assert_no_axe_violations(page, "comprobante con la aplicación del pago")
    page.screenshot(path=str(ARTIFACTS / "allocation-receipt.png"), full_page=True)

    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    credit = page.locator("fieldset.obligation", has_text="Crédito de libre inversión")
    expect(credit).to_contain_text("$ 11.400.000")  # the payoff dropped once, by the amount paid
    expect(page.locator("fieldset.obligation", has_text="Aportes sociales noviembre")).to_have_count(0)

    page.get_by_role("link", name="Mis pagos", exact=True).click()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Aprobada")
    expect(row).to_contain_text("$ 1.080.000")


def test_rejected_payment_then_retry(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "79555444", "carmen.diaz@correo.example", PAY_PASSWORD)
    sign_in(page, "79555444", PAY_PASSWORD)
    choose_and_pay(page, {"Ahorro programado navideño": None}, bank="Banco que rechaza")
    page.get_by_role("button", name="Rechazar").click()
    expect(page.get_by_role("status")).to_contain_text("Rechazada")

    page.get_by_role("link", name="Intentar de nuevo").click()  # the same items, the same bank
    expect(page.locator("tfoot")).to_contain_text("$ 100.000")  # the lock was released
    accept_terms(page)  # consent is given anew for each payment
    page.get_by_role("button", name="Pagar con PSE").click()
    page.get_by_role("button", name="Aprobar").click()
    expect(page.get_by_role("status")).to_contain_text("Aprobada")
    page.get_by_role("link", name="Mis pagos", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").nth(1)).to_contain_text("Rechazada")
