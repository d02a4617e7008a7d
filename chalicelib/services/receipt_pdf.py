"""The receipt as a PDF (SPEC §2.5), drawn with fpdf2: for the download and the receipt email.

fpdf2 is imported on first use (a few hundred milliseconds), never at a cold start. The text is
set in DejaVu Sans (regular and bold, ``chalicelib/fonts/``, licence next to it), a Unicode
TrueType font embedded in the document (fpdf2 keeps only the glyphs used), so any name or
description renders: accents, ñ, "•", other scripts; a character the font lacks (most emoji) is
left out, never an error. Control and direction characters are dropped from every string drawn
(:func:`chalicelib.domain.text.visible`), in one place: :class:`ReceiptDocument`'s
``normalize_text``, which fpdf2 calls for every text it draws or measures. The document is tagged
with its language and title, and the text is real text (selectable, read by screen readers and by
the tests).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.domain import text
from chalicelib.formatting import cop, local_datetime

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.services.payments import ReceiptView

BRAND = (11, 79, 108)  # --brand of app.css
TEXT = (27, 27, 27)
MUTED = (74, 74, 74)
STATUS_COLORS = {"APPROVED": (27, 110, 32), "REJECTED": (176, 0, 32), "FAILED": (176, 0, 32),
                 "EXPIRED": (176, 0, 32)}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
FONTS = Path(__file__).resolve().parent.parent / "fonts"
FONT = "DejaVuSans"
FONT_FILES = {"": FONTS / "DejaVuSans.ttf", "B": FONTS / "DejaVuSans-Bold.ttf"}


def filename(view: ReceiptView) -> str:
    """``comprobante-SVABCDEFGHJKLM.pdf`` (the reference has only letters and digits)."""
    return f"comprobante-{_SAFE_NAME.sub('', view.reference)}.pdf"


def fields(view: ReceiptView, settings: Settings) -> list[tuple[str, str]]:
    """The receipt's fields in the order every rendering of it shows them (page, email, PDF)."""
    status = view.status_label + (f" ({view.status_detail})" if view.status_detail else "")
    return [
        ("Entidad", f"{settings.cooperative_name} · NIT {settings.cooperative_nit}"),
        ("Fecha y hora", local_datetime(view.result_at)),
        ("Estado", status),
        ("Referencia", view.reference),
        ("CUS", view.cus or "Aún no asignado"),
        ("Banco", view.bank_name or ""),
        ("Valor", cop(view.amount)),
        ("Descripción", view.description),
        ("Documento del pagador", f"{view.payer_document_type} {view.payer_document}"),
        ("Dirección IP de origen", view.ip),
    ]


@lru_cache(maxsize=1)
def document_class() -> type:
    """``ReceiptDocument``: fpdf2's document with the fonts and the text policy (built on first
    use, so fpdf2 stays off the cold start)."""
    from fpdf import FPDF

    class ReceiptDocument(FPDF):
        def __init__(self) -> None:
            super().__init__(format="letter", unit="mm")
            for style, path in FONT_FILES.items():
                self.add_font(FONT, style, str(path))

        def normalize_text(self, value: str) -> str:
            return str(super().normalize_text(text.visible(value)))

    return ReceiptDocument


def render(view: ReceiptView, settings: Settings, *, generated_at: datetime) -> bytes:
    from fpdf.fonts import FontFace

    pdf = document_class()()
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title(f"Comprobante de pago {view.reference}")
    pdf.set_author(settings.cooperative_name)
    pdf.set_subject("Comprobante de pago por PSE")
    pdf.set_creator("Sucursal Virtual")
    pdf.set_lang("es-CO")
    pdf.set_creation_date(generated_at)
    pdf.add_page()
    width = pdf.epw

    # Header: the cooperative, then the title.
    pdf.set_fill_color(*BRAND)
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(width, 9, f"  {settings.cooperative_short_name} · Sucursal Virtual", fill=True,
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_fill_color(255, 255, 255)  # tables fill their cells with the current colour
    pdf.set_draw_color(190, 198, 205)
    pdf.set_text_color(*TEXT)
    pdf.set_font(FONT, "B", 13)
    pdf.multi_cell(width, 6, settings.cooperative_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.cell(width, 5, f"NIT {settings.cooperative_nit}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, "B", 17)
    pdf.set_text_color(*BRAND)
    pdf.cell(width, 9, "Comprobante de pago PSE", new_x="LMARGIN", new_y="NEXT")

    # The status, in words and colour.
    pdf.set_text_color(*STATUS_COLORS.get(view.status, (120, 80, 0)))
    pdf.set_font(FONT, "B", 12)
    status = f"Estado: {view.status_label}"
    if view.status_detail:
        status += f" - {view.status_detail}"
    pdf.multi_cell(width, 6, status, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*TEXT)
    pdf.ln(2)

    heading = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=BRAND)
    pdf.set_font(FONT, "", 10)
    with pdf.table(col_widths=(34, 66), text_align=("LEFT", "LEFT"), first_row_as_headings=False,
                   line_height=5.5, padding=1.6, borders_layout="HORIZONTAL_LINES") as table:
        for label, value in fields(view, settings):
            row = table.row()
            row.cell(label, style=FontFace(emphasis="BOLD", color=MUTED))
            row.cell(value)
    pdf.ln(4)

    _heading(pdf, "Obligaciones pagadas" if view.status == "APPROVED" else "Obligaciones incluidas")
    with pdf.table(col_widths=(58, 24, 18), text_align=("LEFT", "LEFT", "RIGHT"),
                   headings_style=heading, line_height=5.5, padding=1.6,
                   borders_layout="HORIZONTAL_LINES") as table:
        header = table.row()
        for title in ("Obligación", "Producto", "Valor"):
            header.cell(title)
        for item in view.items:
            row = table.row()
            row.cell(f"{item.type_label} · {item.description}")
            row.cell(item.product_number)
            row.cell(cop(item.amount))
        total = table.row()
        total.cell("Total", style=FontFace(emphasis="BOLD"), colspan=2)
        total.cell(cop(view.amount), style=FontFace(emphasis="BOLD"))
    pdf.ln(4)

    if view.allocation_note:
        _allocation(pdf, view, heading)

    if view.lifecycle:
        _heading(pdf, "Seguimiento del pago")
        pdf.set_font(FONT, "", 10)
        for number, step in enumerate(view.lifecycle, start=1):
            when = local_datetime(step.at) if step.at else "por confirmar"
            mark = "  (paso actual)" if step.current and step.state != "done" else ""
            pdf.multi_cell(width, 5.5, f"{number}. {step.label}: {when}{mark}",
                           new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)

    pdf.set_font(FONT, "", 8.5)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(width, 4.5, _footer(view, settings, generated_at), align="L",
                   new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _allocation(pdf: Any, view: ReceiptView, heading: Any) -> None:
    """How each credit payment is applied to its instalment's parts."""
    from fpdf.fonts import FontFace

    _heading(pdf, "Aplicación del pago")
    pdf.multi_cell(pdf.epw, 5.5, view.allocation_note, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    for item in view.items:
        if not item.allocation:
            continue
        with pdf.table(col_widths=(70, 30), text_align=("LEFT", "RIGHT"), headings_style=heading,
                       line_height=5.5, padding=1.6, borders_layout="HORIZONTAL_LINES") as table:
            header = table.row()
            header.cell(f"{item.type_label} · {item.description}")
            header.cell("Valor")
            for line in item.allocation:
                row = table.row()
                row.cell(line.label)
                row.cell(cop(line.amount))
            total = table.row()
            total.cell("Total", style=FontFace(emphasis="BOLD"))
            total.cell(cop(item.amount), style=FontFace(emphasis="BOLD"))
        pdf.ln(2)
    pdf.ln(2)


def _heading(pdf: Any, text: str) -> None:
    pdf.set_font(FONT, "B", 12)
    pdf.set_text_color(*BRAND)
    pdf.cell(pdf.epw, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*TEXT)
    pdf.set_font(FONT, "", 10)


def _footer(view: ReceiptView, settings: Settings, generated_at: datetime) -> str:
    pending = (" Mientras el pago esté pendiente, este comprobante no prueba el débito: consulte "
               "el estado en la Sucursal Virtual." if not view.is_final else "")
    return (f"Comprobante generado el {local_datetime(generated_at)} por la Sucursal Virtual de "
            f"{settings.cooperative_name}.{pending} Para cualquier consulta sobre esta transacción "
            f"tenga a mano la referencia y el CUS. Atención al asociado: {settings.support_phone} · "
            f"{settings.support_email}. La cooperativa nunca le pedirá su contraseña.")
