"""The staff console's pages: each parses, checks the role, calls one use case, renders or redirects.

Roles: ``consulta`` reads everything; ``tesoreria`` also re-queries payments, resends receipts,
resolves reviews, uploads files, generates and downloads exports, and resends a member's recovery
email; ``administrador`` also blocks/unblocks members, ends their sessions and manages staff users.
After a POST the page redirects with ``?aviso=<code>`` (fixed messages: nothing typed is reflected).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from chalice import Response

from chalicelib.adapters.cognito import ROLES, CognitoRefusal
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.payments import STATUSES
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.security.spreadsheet import CsvWriter
from chalicelib.services import console, staff_auth, uploads
from chalicelib.services import exports as exports_service
from chalicelib.services import payments as payments_service
from chalicelib.services import staff as staff_service
from chalicelib.services.audit import record
from chalicelib.services.payments import terms as payment_terms
from chalicelib.services.staff_auth import ROLE_LABELS, STAFF_SUBJECT
from chalicelib.services.texts import STATUS_LABELS, TYPE_LABELS
from chalicelib.web import http
from chalicelib.web.pages import CSRF_REFUSED
from chalicelib.web.staff_pages import StaffPage, staff_page

NOTICES = {
    "consulta-aplicada": "Se consultó la pasarela y se aplicó su respuesta.",
    "consulta-sin-cambio": "Se consultó la pasarela: el pago no cambió.",
    "consulta-revision": "Se consultó la pasarela: la respuesta no coincide y el pago quedó para revisión.",
    "consulta-no-existe": "La pasarela no conoce este pago todavía.",
    "consulta-error": "No se pudo consultar la pasarela; intente de nuevo en unos minutos.",
    "comprobante": "Se reenvió el comprobante al correo del asociado.",
    "resuelto": "Se resolvió el caso y quedó en el registro de auditoría.",
    "exportado": "Se generó la exportación.",
    "bloqueado": "El asociado quedó bloqueado en el portal y sus sesiones terminaron.",
    "desbloqueado": "El asociado quedó desbloqueado en el portal.",
    "sesiones": "Se cerraron todas las sesiones del asociado.",
    "recuperacion": "Si el asociado puede recuperar su acceso, se le envió el correo de recuperación.",
    "creado": "Se creó el usuario del personal.",
    "rol": "Se cambió el rol del usuario.",
    "inhabilitado": "Se inhabilitó el usuario y se cerraron sus sesiones.",
    "habilitado": "Se habilitó el usuario.",
}
REQUERY_NOTICES = {"applied": "consulta-aplicada", "review": "consulta-revision",
                   "not_at_gateway": "consulta-no-existe", "gateway_error": "consulta-error"}
REVIEW_EXPLAINED = {
    "amount_mismatch": "La pasarela confirmó un valor distinto del que el asociado iba a pagar.",
    "reference_mismatch": "La pasarela respondió con otra referencia de pago.",
    "gateway_id_mismatch": "La pasarela respondió con otra transacción para esta referencia.",
    "horizon_exceeded": ("Pasaron más de 24 horas y el banco no confirma ni rechaza el pago: "
                         "verifíquelo con las herramientas de ACH / la pasarela."),
    "approved_after_final": ("El banco aprobó el pago después de que el portal lo dio por terminado "
                             "(rechazado, fallido o vencido): el dinero llegó, regístrelo en el "
                             "sistema central."),
}
REVIEW_ACTIONS = {"apply": "Aplicar (la pasarela lo confirma aprobado)", "reject": "Rechazar",
                  "keep_pending": "Dejar pendiente 24 horas más"}
CSV_MAX_PAGES = 50
SEARCH_FIELDS = ("reference", "cus", "document", "status", "from", "to")


def _notice(page: StaffPage) -> str | None:
    return NOTICES.get(page.query().get("aviso", ""))


def _form(page: StaffPage) -> dict[str, str]:
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        raise InvalidInput(CSRF_REFUSED, code="csrf")
    return fields


# --- Resumen ---------------------------------------------------------------------------------------

def bar_chart(points: list[tuple[Any, console.Tally]], *, width: int = 600,
              height: int = 160) -> dict[str, Any]:
    """Geometry of the 30-day bar chart (drawn as inline SVG by the template)."""
    top = max((t.amount for _, t in points), default=0) or 1
    step = width / max(len(points), 1)
    bars = []
    for index, (day, tally) in enumerate(points):
        h = round(tally.amount / top * (height - 20), 1)
        bars.append({"x": round(index * step + 1, 1), "y": round(height - h, 1), "w": round(step - 2, 1),
                     "h": h, "day": day, "tally": tally})
    return {"width": width, "height": height, "bars": bars, "top": top}


@staff_page
def summary(page: StaffPage) -> Response:
    staff = page.require_staff()
    data = console.collections_summary(page.ctx)
    past = uploads.history(page.ctx, limit=1)
    recent = console.recent_exports(page.ctx, months=1)
    log_event("sensitive_read", what="collections_summary", actor=staff.actor)
    return page.render("staff/summary.html", section="resumen", data=data, chart=bar_chart(data.per_day),
                       last_import=past[0] if past else None, last_export=recent[0] if recent else None,
                       status_labels=STATUS_LABELS, type_labels=TYPE_LABELS)


# --- Pagos -----------------------------------------------------------------------------------------

def _search_params(query: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k in (*SEARCH_FIELDS, "cursor") and v}


@staff_page
def payments(page: StaffPage) -> Response:
    staff = page.require_staff()
    query = page.query()
    params = _search_params(query)
    values: dict[str, Any] = {"section": "pagos", "form": {k: query.get(k, "") for k in SEARCH_FIELDS},
                              "statuses": STATUSES, "status_labels": STATUS_LABELS, "error": None,
                              "results": None, "next_cursor": None, "csv_query": ""}
    if not {k for k in params if k != "cursor"}:
        return page.render("staff/payments.html", **values)
    try:
        search = staff_service.parse_search(params)
    except InvalidInput as error:
        return page.render("staff/payments.html", status=400, **{**values, "error": error.message})
    if query.get("formato") == "csv":
        return _payments_csv(page, search, staff.actor)
    result = staff_service.search_payments(page.ctx, search, actor=staff.actor)
    filters = {k: v for k, v in params.items() if k != "cursor"}
    values.update(results=result.items, next_cursor=result.next_cursor,
                  next_query=urlencode({**filters, "cursor": result.next_cursor or ""}),
                  csv_query=urlencode({**filters, "formato": "csv"}))
    return page.render("staff/payments.html", **values)


CSV_COLUMNS = ("reference", "cus", "status", "amount", "created_at", "approved_at", "document_type",
               "document_number", "payer_name", "bank_name", "export_id")


def _payments_csv(page: StaffPage, search: staff_service.Search, actor: str) -> Response:
    buffer = io.StringIO()
    writer = CsvWriter(buffer)  # formula-like cells neutralised, RFC 4180 quoting
    writer.writerow(CSV_COLUMNS)
    cursor = search.cursor
    for _ in range(CSV_MAX_PAGES):
        result = staff_service.search_payments(page.ctx, replace(search, limit=100, cursor=cursor),
                                               actor=actor)
        for p in result.items:
            writer.writerow([p.reference, p.cus, p.status, int(p.amount), iso(p.created_at),
                             iso(p.approved_at), p.document_type, p.document_number, p.payer_name,
                             p.bank_name, p.export_id])
        cursor = result.next_cursor
        if cursor is None:
            break
    return Response(body=buffer.getvalue(), status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="pagos.csv"'})


@staff_page
def payment_detail(page: StaffPage) -> Response:
    staff = page.require_staff()
    data = console.payment_record(page.ctx, page.param("payment_id"), actor=staff.actor)
    return page.render("staff/payment.html", section="pagos", record=data, p=data.payment,
                       consent=payment_terms.consent_view(data.payment.consent),
                       notice=_notice(page), status_labels=STATUS_LABELS, type_labels=TYPE_LABELS,
                       review_explained=REVIEW_EXPLAINED)


@staff_page
def payment_requery(page: StaffPage) -> Response:
    staff = page.require_staff("tesoreria")
    _form(page)
    payment_id = page.param("payment_id")
    result = payments_service.staff_requery(page.ctx, payment_id, actor=staff.actor, ip=page.ip)
    notice = REQUERY_NOTICES.get(result.outcome, "consulta-sin-cambio")
    return page.redirect(f"/backoffice/pagos/{result.payment.payment_id}?aviso={notice}")


@staff_page
def payment_resend(page: StaffPage) -> Response:
    staff = page.require_staff("tesoreria")
    fields = _form(page)
    reason = staff_service.parse_reason(fields.get("reason") or None, required=False)
    payment = payments_service.resend_receipt(page.ctx, page.param("payment_id"), actor=staff.actor,
                                              ip=page.ip, reason=reason)
    return page.redirect(f"/backoffice/pagos/{payment.payment_id}?aviso=comprobante")


# --- Revisión --------------------------------------------------------------------------------------

@staff_page
def review(page: StaffPage) -> Response:
    staff = page.require_staff()
    query = page.query()
    result = staff_service.review_queue(page.ctx, limit=20, cursor=query.get("cursor") or None)
    log_event("sensitive_read", what="review_queue", actor=staff.actor, results=len(result.items))
    return page.render("staff/review.html", section="revision", items=result.items,
                       next_cursor=result.next_cursor, notice=_notice(page), explained=REVIEW_EXPLAINED,
                       actions=REVIEW_ACTIONS, status_labels=STATUS_LABELS, error=None, failed_id=None)


@staff_page
def review_resolve(page: StaffPage) -> Response:
    staff = page.require_staff("tesoreria")
    fields = _form(page)
    payment_id = page.param("payment_id")
    action = fields.get("action", "")
    try:
        if action not in REVIEW_ACTIONS:
            raise InvalidInput("Elija qué hacer con el pago.", field="action")
        reason = staff_service.parse_reason(fields.get("reason", ""))
    except InvalidInput:
        result = staff_service.review_queue(page.ctx, limit=20, cursor=None)
        return page.render("staff/review.html", status=400, section="revision", items=result.items,
                           next_cursor=result.next_cursor, notice=None, explained=REVIEW_EXPLAINED,
                           actions=REVIEW_ACTIONS, status_labels=STATUS_LABELS, failed_id=payment_id,
                           error=f"Elija una acción y escriba el motivo ({staff_service.REASON_MIN} a "
                                 f"{staff_service.REASON_MAX} caracteres): queda en la auditoría.")
    payments_service.resolve_review(page.ctx, payment_id, action=action, reason=reason or "",
                                    actor=staff.actor, ip=page.ip)
    return page.redirect("/backoffice/revision?aviso=resuelto")


# --- Cargas ----------------------------------------------------------------------------------------

@staff_page
def upload_page(page: StaffPage) -> Response:
    staff = page.require_staff()
    forms = {}
    if staff.can("tesoreria"):
        landing = f"{page.settings.public_base_url}/backoffice/cargas/archivo"
        forms = {kind: uploads.upload_form(page.ctx, kind, redirect_url=landing) for kind in uploads.KINDS}
    return page.render_with_csp("staff/uploads.html", forms=forms, kinds=uploads.KINDS,
                                past=uploads.history(page.ctx), section="cargas")


@staff_page
def upload_result(page: StaffPage) -> Response:
    staff = page.require_staff()
    query = page.query()
    key = uploads.parse_key(query.get("key"))
    status = uploads.upload_status(page.ctx, key)
    if query.get("bucket") and staff.can("tesoreria"):  # S3's redirect right after the upload
        record(page.ctx, subject=STAFF_SUBJECT, event="staff_file_uploaded", actor=staff.actor,
               ip=page.ip, key=key)
    return page.render("staff/upload.html", section="cargas", upload=status, key=key)


# --- Exportaciones ---------------------------------------------------------------------------------

@staff_page
def exports_page(page: StaffPage) -> Response:
    page.require_staff()
    return page.render("staff/exports.html", section="exportaciones",
                       exports=console.recent_exports(page.ctx), notice=_notice(page))


@staff_page
def export_now(page: StaffPage) -> Response:
    staff = page.require_staff("tesoreria")
    _form(page)
    result = exports_service.export_approved(page.ctx, now=page.ctx.now(), requested_by=staff.actor,
                                             claim_seconds=exports_service.API_CLAIM_SECONDS)
    record(page.ctx, subject=STAFF_SUBJECT, event="staff_export_created", actor=staff.actor, ip=page.ip,
           export_id=result.export_id, payments=result.payments)
    return page.redirect("/backoffice/exportaciones?aviso=exportado")


@staff_page
def export_download(page: StaffPage) -> Response:
    staff = page.require_staff("tesoreria")
    export = exports_service.get_export(page.ctx, page.param("export_id"))
    url = exports_service.download_url(page.settings, export.key) if export and export.key else None
    if export is None or url is None:
        raise NotFound("La exportación no existe o todavía no tiene archivo.", code="export_not_found")
    record(page.ctx, subject=STAFF_SUBJECT, event="sensitive_read", actor=staff.actor, ip=page.ip,
           what="export_download", export_id=export.export_id)
    return http.redirect(url)


# --- Asociados -------------------------------------------------------------------------------------

@staff_page
def members(page: StaffPage) -> Response:
    staff = page.require_staff()
    query = page.query()
    raw = (query.get("documento") or "").strip()
    values: dict[str, Any] = {"section": "asociados", "document": raw[:20], "overview": None, "audit": [],
                              "notice": _notice(page), "error": None, "status_labels": STATUS_LABELS,
                              "type_labels": TYPE_LABELS}
    if not raw:
        return page.render("staff/members.html", **values)
    try:
        document = staff_service.parse_document(raw, "documento")
    except InvalidInput as error:
        return page.render("staff/members.html", status=400, **{**values, "error": error.message})
    values["overview"] = console.member_overview(page.ctx, document, actor=staff.actor)
    values["audit"] = staff_service.member_audit(page.ctx, document, limit=30, cursor=None,
                                                 actor=staff.actor).items
    return page.render("staff/members.html", **values)


def _member_action(page: StaffPage, role: str) -> tuple[staff_auth.StaffSessionView, str, str]:
    staff = page.require_staff(role)
    fields = _form(page)
    document = staff_service.parse_document(page.param("document_number"), "documento")
    reason = staff_service.parse_reason(fields.get("reason", ""))
    return staff, document, reason or ""


def _back_to_member(page: StaffPage, document: str, notice: str) -> Response:
    return page.redirect(f"/backoffice/asociados?documento={document}&aviso={notice}")


@staff_page
def member_block(page: StaffPage) -> Response:
    staff, document, reason = _member_action(page, "administrador")
    staff_service.set_blocked(page.ctx, document, blocked=True, reason=reason, actor=staff.actor, ip=page.ip)
    return _back_to_member(page, document, "bloqueado")


@staff_page
def member_unblock(page: StaffPage) -> Response:
    staff, document, reason = _member_action(page, "administrador")
    staff_service.set_blocked(page.ctx, document, blocked=False, reason=reason, actor=staff.actor, ip=page.ip)
    return _back_to_member(page, document, "desbloqueado")


@staff_page
def member_end_sessions(page: StaffPage) -> Response:
    staff, document, reason = _member_action(page, "administrador")
    console.end_member_sessions(page.ctx, document, actor=staff.actor, ip=page.ip, reason=reason)
    return _back_to_member(page, document, "sesiones")


@staff_page
def member_recovery(page: StaffPage) -> Response:
    staff, document, reason = _member_action(page, "tesoreria")
    console.send_member_recovery(page.ctx, document, actor=staff.actor, ip=page.ip, reason=reason)
    return _back_to_member(page, document, "recuperacion")


# --- Personal (administrador) ------------------------------------------------------------------------

def _staff_list(page: StaffPage, *, status: int = 200, error: str | None = None,
                created: dict[str, str] | None = None) -> Response:
    return page.render("staff/people.html", status=status, section="personal",
                       users=staff_auth.directory(page.ctx).list_users(), roles=ROLES,
                       role_labels=ROLE_LABELS,
                       notice=_notice(page), error=error, created=created,
                       activity=console.staff_audit(page.ctx, limit=30))


@staff_page
def people(page: StaffPage) -> Response:
    page.require_staff("administrador")
    return _staff_list(page)


def _refused(page: StaffPage, exc: CognitoRefusal) -> Response:
    messages = {"UsernameExistsException": "Ya existe un usuario con ese nombre.",
                "UserNotFoundException": "No existe ese usuario.",
                "InvalidParameterException": "Cognito rechazó los datos: revise el usuario y el correo."}
    return _staff_list(page, status=400, error=messages.get(exc.code, "Cognito rechazó la operación."))


@staff_page
def people_create(page: StaffPage) -> Response:
    staff = page.require_staff("administrador")
    fields = _form(page)
    username = fields.get("username", "").strip().lower()
    email = fields.get("email", "").strip()
    role = fields.get("role", "")
    if not staff_auth.valid_username(username) or "@" not in email or len(email) > 254 or role not in ROLES:
        return _staff_list(page, status=400, error="Escriba un usuario (letras, números y . _ -), un correo "
                                                   "válido y elija un rol.")
    temporary = staff_auth.temporary_password(page.ctx)
    dirx = staff_auth.directory(page.ctx)
    try:
        dirx.create_user(username, email, temporary)
        dirx.set_group(username, role)
    except CognitoRefusal as exc:
        return _refused(page, exc)
    record(page.ctx, subject=STAFF_SUBJECT, event="staff_user_created", actor=staff.actor, ip=page.ip,
           username=username, role=role)
    return _staff_list(page, created={"username": username, "password": temporary})


@staff_page
def people_role(page: StaffPage) -> Response:
    staff = page.require_staff("administrador")
    fields = _form(page)
    username, role = page.param("username"), fields.get("role", "")
    if role not in ROLES or not staff_auth.valid_username(username):
        return _staff_list(page, status=400, error="Elija un rol válido.")
    try:
        staff_auth.directory(page.ctx).set_group(username, role)
    except CognitoRefusal as exc:
        return _refused(page, exc)
    ended = console.staff_sessions_ended(page.ctx, username)  # the new role applies from the next sign-in
    record(page.ctx, subject=STAFF_SUBJECT, event="staff_user_role", actor=staff.actor, ip=page.ip,
           username=username, role=role, sessions_ended=ended)
    return page.redirect("/backoffice/personal?aviso=rol")


@staff_page
def people_enabled(page: StaffPage) -> Response:
    staff = page.require_staff("administrador")
    fields = _form(page)
    username, enable = page.param("username"), fields.get("enabled") == "true"
    if not staff_auth.valid_username(username) or (username == staff.username and not enable):
        return _staff_list(page, status=400, error="No puede inhabilitar su propio usuario.")
    try:
        staff_auth.directory(page.ctx).set_enabled(username, enable)
    except CognitoRefusal as exc:
        return _refused(page, exc)
    ended = 0 if enable else console.staff_sessions_ended(page.ctx, username)
    record(page.ctx, subject=STAFF_SUBJECT, event="staff_user_enabled" if enable else "staff_user_disabled",
           actor=staff.actor, ip=page.ip, username=username, sessions_ended=ended)
    return page.redirect(f"/backoffice/personal?aviso={'habilitado' if enable else 'inhabilitado'}")
