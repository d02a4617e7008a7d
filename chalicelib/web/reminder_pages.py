"""The unsubscribe link of reminder emails: it works without signing in.

``GET /avisos/cancelar?token=...`` only shows a question with a button: mail scanners and link
previews fetch links, and must not unsubscribe anybody. ``POST`` records the choice; the signed,
member-specific token is the proof (so no session nor CSRF cookie is needed), which also serves
the RFC 8058 one-click ``POST`` that mail providers send (``List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

from chalice import Response

from chalicelib.domain.members import mask_document
from chalicelib.security.signing import BadSignature
from chalicelib.services import reminders
from chalicelib.web import http
from chalicelib.web.pages import Page, page_handler


@page_handler
def unsubscribe_form(page: Page) -> Response:
    token = page.query().get("token", "")
    try:
        member = reminders.member_for_token(page.ctx, token)
    except BadSignature:
        return page.render("reminders_unsubscribe.html", status=400, error=reminders.INVALID_LINK)
    return page.render("reminders_unsubscribe.html", error=None, done=False, token=token,
                       document=mask_document(member.document_number, for_people=True),
                       opted_out=bool(member.reminders_opt_out))


@page_handler
def unsubscribe_submit(page: Page) -> Response:
    fields = http.form_fields(page.request)
    token = fields.get("token") or page.query().get("token", "")
    opt_out = fields.get("accion", "cancelar") != "activar"  # one-click posts carry no accion
    try:
        reminders.set_opt_out(page.ctx, token, opt_out=opt_out, ip=page.ip)
    except BadSignature:
        return page.render("reminders_unsubscribe.html", status=400, error=reminders.INVALID_LINK)
    return page.render("reminders_unsubscribe.html", error=None, done=True, token=token,
                       opted_out=opt_out)


# --- scheduled entry points (app.py) ---------------------------------------------------------

def run_due_reminders(event: object = None) -> dict[str, int | bool]:
    from chalicelib.context import get_context

    return reminders.send_due_reminders(get_context()).as_dict()


def run_pending_reminders(event: object = None) -> dict[str, int | bool]:
    from chalicelib.context import get_context

    return reminders.send_pending_reminders(get_context()).as_dict()
