"""What members and staff read about payments, in Spanish: status and type labels, the words of
the payment's stepper, ACH's literal texts (reference/pse.md). The rules they describe live in
:mod:`chalicelib.domain.payments`; the pages and emails show these words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import payments as rules
from chalicelib.domain.payments import APPROVED, CREATED, EXPIRED, FAILED, PENDING, REJECTED

# --- labels -----------------------------------------------------------------------------------

STATUS_LABELS = {
    CREATED: "Iniciada",
    PENDING: "Pendiente",
    APPROVED: "Aprobada",
    REJECTED: "Rechazada",
    FAILED: "Fallida",
    EXPIRED: "Vencida",
}
STATUS_DETAILS = {
    PENDING: "verifique con su entidad financiera si el débito fue realizado",
}
TYPE_LABELS = {
    "APORTE": "Aportes",
    "CREDITO": "Crédito",
    "AHORRO": "Ahorro",
    "CONVENIO": "Convenio",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def status_detail(status: str) -> str | None:
    return STATUS_DETAILS.get(status)


def type_label(obligation_type: str) -> str:
    return TYPE_LABELS.get(obligation_type, obligation_type.capitalize())


# --- the lifecycle the member sees -----------------------------------------------------------------

#: Step names as the member reads them ("el pago": masculine, unlike the receipt's status labels).
STEP_LABELS = {
    CREATED: "Iniciado",
    PENDING: "Pendiente en el banco",
    APPROVED: "Aprobado",
    REJECTED: "Rechazado",
    FAILED: "Fallido",
    EXPIRED: "Vencido",
}
#: A step's name once it is behind the payment (a ✓ beside "Pendiente" would read as pending).
STEP_DONE_LABELS = {
    PENDING: "Enviado a su banco",
}
#: What each step means, one short sentence (shown under the step and read by screen readers).
STEP_HINTS = {
    CREATED: "Registramos su pago en la Sucursal Virtual.",
    PENDING: "Su banco está confirmando el débito.",
    APPROVED: "Su banco confirmó el débito a favor de la cooperativa.",
    REJECTED: "Su banco no autorizó el débito. No se descontó dinero.",
    FAILED: "La transacción no se pudo completar. No se descontó dinero.",
    EXPIRED: "No recibimos la respuesta del banco a tiempo.",
}
#: What a step not reached yet is waiting for.
STEP_UPCOMING_HINTS = {
    PENDING: "Falta autorizar el pago en la página de su banco.",
    APPROVED: "Falta la confirmación de su banco.",
}


@dataclass(frozen=True)
class LifecycleStep:
    key: str
    label: str
    hint: str
    at: datetime | None  # None for a step not reached yet
    state: str  # "done" | "active" (in progress) | "upcoming" | "failed"
    current: bool  # the step the payment is at (aria-current="step")


def labelled(step: rules.Step) -> LifecycleStep:
    """A step with its words: a step behind the payment reads as done, one ahead as awaited."""
    hints = STEP_UPCOMING_HINTS if step.state == "upcoming" else STEP_HINTS
    labels = STEP_DONE_LABELS if step.state == "done" and not step.current else STEP_LABELS
    return LifecycleStep(step.key, labels.get(step.key, STEP_LABELS.get(step.key, step.key)),
                         hints.get(step.key, ""), step.at, step.state, step.current)


def lifecycle(status: str, reached: Iterable[tuple[str, datetime]]) -> list[LifecycleStep]:
    """The payment's stepper (:func:`chalicelib.domain.payments.lifecycle`) in words."""
    return [labelled(step) for step in rules.lifecycle(status, reached)]


# --- ACH's literal texts (reference/pse.md §1.2, §2) ---------------------------------------------

PENDING_MESSAGE = (
    "En este momento su #{reference} presenta un proceso de pago cuya transacción se encuentra "
    "PENDIENTE de recibir confirmación por parte de su entidad financiera, por favor espere unos "
    "minutos y vuelva a consultar más tarde para verificar si su pago fue confirmado de forma "
    "exitosa. Si desea mayor información sobre el estado actual de su operación puede comunicarse "
    "a nuestras líneas de atención al cliente {phone} o enviar un correo electrónico a {email} y "
    "preguntar por el estado de la transacción: {cus}"
)
EXCEEDED_LIMIT_MESSAGE = (
    "El monto de la transacción excede los límites establecidos en PSE para la empresa, por favor "
    "comuníquese con nuestras líneas de atención al cliente al teléfono {phone} o al correo "
    "electrónico {email}"
)
BANK_UNREACHABLE_MESSAGE = (
    "La entidad financiera no puede ser contactada para iniciar la transacción, por favor "
    "seleccione otra o intente más tarde"
)
CREATE_FAILED_MESSAGE = (
    "No se pudo crear la transacción, por favor intente más tarde o comuníquese con la empresa"
)
BANK_LIST_UNAVAILABLE_MESSAGE = (
    "No se pudo obtener la lista de Entidades Financieras, por favor intente más tarde"
)


def pending_message(*, reference: str, cus: str | None, phone: str, email: str) -> str:
    """ACH's double-payment text; it names the CUS, or the reference while there is none yet."""
    return PENDING_MESSAGE.format(reference=reference, phone=phone, email=email,
                                  cus=cus or reference)


def creation_failure_message(code: str | None, gateway_message: str | None, *, phone: str,
                             email: str) -> str:
    """ACH's literal text for the return codes that have one, else the gateway's Spanish text."""
    if code == "FAIL_EXCEEDEDLIMIT":
        return EXCEEDED_LIMIT_MESSAGE.format(phone=phone, email=email)
    if code == "FAIL_BANKUNREACHEABLE":
        return BANK_UNREACHABLE_MESSAGE
    return gateway_message or CREATE_FAILED_MESSAGE
