"""Server-rendered pages of the simulated bank (Spanish, no JavaScript)."""

from __future__ import annotations

from html import escape

STATUS_TEXT = {
    "PENDING": "Pendiente",
    "APPROVED": "Aprobada",
    "DECLINED": "Rechazada",
    "ERROR": "Fallida",
    "VOIDED": "Anulada",
}

_STYLE = """
body{margin:0;font-family:Arial,Helvetica,sans-serif;background:#eef1f5;color:#1d2733}
header{background:#0b3d6e;color:#fff;padding:14px 20px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{max-width:560px;margin:24px auto;background:#fff;border:1px solid #cfd6df;border-radius:6px;
padding:20px 24px}
.aviso{background:#fff6d6;border:1px solid #e6cf7a;padding:8px 10px;font-size:13px;margin-bottom:16px}
table{width:100%;border-collapse:collapse;margin-bottom:18px}
th,td{text-align:left;padding:7px 4px;border-bottom:1px solid #e3e7ec;font-size:15px;vertical-align:top}
th{width:42%;color:#4a5866;font-weight:normal}
.valor{font-size:20px;font-weight:bold}
.acciones{display:grid;grid-template-columns:1fr 1fr;gap:10px}
button{font-size:16px;padding:11px;border-radius:4px;border:1px solid #8795a3;background:#f4f6f8;
cursor:pointer}
button.aprobar{background:#1d7a35;border-color:#1d7a35;color:#fff}
button.rechazar{background:#a32020;border-color:#a32020;color:#fff}
a{color:#0b3d6e}
"""


def _page(title: str, bank_name: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="es-CO">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(bank_name)}</h1><p>Pagos Seguros en Línea (PSE) · "
        "Autorización de débito</p></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def format_cop(amount: int) -> str:
    """es-CO money: ``$ 1.234.567``."""
    return "$ " + f"{amount:,}".replace(",", ".")


_BUTTONS = {
    "APPROVED": ("Aprobar", ' class="aprobar"'),
    "DECLINED": ("Rechazar", ' class="rechazar"'),
    "ERROR": ("Fallida", ""),
    "PENDING": ("Dejar pendiente", ""),
}


def bank_page(*, action: str, bank_name: str, merchant: str, merchant_nit: str,
              reference: str, description: str, amount: int, cus: str, created_at: str,
              first: str = "APPROVED") -> str:
    """The payer's four outcomes, ``first`` (the test bank's own: "1" approves, "2" declines)
    first."""
    rows = [
        ("Comercio", f"{escape(merchant)}<br><small>NIT {escape(merchant_nit)}</small>"),
        ("Referencia", escape(reference)),
        ("Descripción", escape(description)),
        ("Valor a pagar", f'<span class="valor">{escape(format_cop(amount))}</span>'),
        ("CUS", escape(cus)),
        ("Fecha", escape(created_at)),
    ]
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    order = [first, *(outcome for outcome in _BUTTONS if outcome != first)]
    buttons = "".join(f'<button type="submit" name="decision" value="{outcome}"'
                      f"{_BUTTONS[outcome][1]}>{_BUTTONS[outcome][0]}</button>\n"
                      for outcome in order)
    body = (
        '<p class="aviso">Simulador local de PSE: no se realiza ningún débito real.</p>\n'
        "<h2>Confirme el pago</h2>\n"
        f"<table>{table}</table>\n"
        f'<form method="post" action="{escape(action)}">\n'
        '<div class="acciones">\n'
        f"{buttons}"
        "</div>\n</form>"
    )
    return _page(f"{bank_name} – Autorización de pago PSE", bank_name, body)


def checkout_page(*, action: str, merchant: str, merchant_nit: str, reference: str,
                  description: str, amount: int, banks: tuple[tuple[str, str], ...]) -> str:
    """PlacetoPay's checkout: the payer picks the bank here (the portal never asks)."""
    rows = [
        ("Comercio", f"{escape(merchant)}<br><small>NIT {escape(merchant_nit)}</small>"),
        ("Referencia", escape(reference)),
        ("Descripción", escape(description)),
        ("Valor a pagar", f'<span class="valor">{escape(format_cop(amount))}</span>'),
    ]
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    options = "".join(f'<option value="{escape(code)}">{escape(name)}</option>'
                      for code, name in banks)
    buttons = "".join(f'<button type="submit" name="decision" value="{outcome}"{css}>{label}'
                      "</button>\n" for outcome, (label, css) in _BUTTONS.items())
    body = (
        '<p class="aviso">Simulador local de PlacetoPay: no se realiza ningún débito real.</p>\n'
        "<h2>Pague con PSE</h2>\n"
        f"<table>{table}</table>\n"
        f'<form method="post" action="{escape(action)}">\n'
        '<p><label for="bank">Banco</label><br>\n'
        '<select id="bank" name="bank" required>\n'
        '<option value="" disabled selected>A continuación seleccione su banco</option>\n'
        f"{options}</select></p>\n"
        f'<div class="acciones">\n{buttons}</div>\n</form>'
    )
    return _page("PlacetoPay – Pago PSE", "PlacetoPay", body)


def processed_page(*, bank_name: str, reference: str, status: str, return_url: str) -> str:
    body = (
        "<h2>Esta transacción ya fue procesada</h2>\n"
        f"<p>Referencia <strong>{escape(reference)}</strong>: "
        f"{escape(STATUS_TEXT.get(status, status))}.</p>\n"
        f'<p><a href="{escape(return_url)}">Volver al comercio</a></p>'
    )
    return _page("Transacción procesada", bank_name, body)


def message_page(title: str, message: str) -> str:
    return _page(title, "PSE", f"<h2>{escape(title)}</h2>\n<p>{escape(message)}</p>")
