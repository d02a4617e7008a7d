"""Email through Amazon SES (boto3), HTML and text parts, UTF-8.

A plain message goes through ``SendEmail``. A message with attachments (the PDF receipt) or extra
headers (``List-Unsubscribe`` on reminders) is built here as MIME and goes through
``SendRawEmail``: ``multipart/mixed`` holding a ``multipart/alternative`` (text, then HTML) and
each attachment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chalicelib.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=())  # extra headers (raw path only)

    @property
    def needs_raw(self) -> bool:
        return bool(self.attachments or self.headers)


class MailError(Exception):
    """SES did not take the message (after botocore's own retries)."""


class Mailer(Protocol):
    def send(self, email: Email) -> str:
        """Send and return the provider's message id; raise MailError."""


def mime_message(sender: str, email: Email) -> bytes:
    """The raw MIME bytes of ``email`` (quoted-printable UTF-8 text, base64 attachments)."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import formatdate, make_msgid, parseaddr

    message = EmailMessage(policy=SMTP)
    address = parseaddr(sender)[1]
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = email.to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text, cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.filename)
    return message.as_bytes()


class SesMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: SESClient | None = None

    def _ses(self) -> SESClient:
        if self._client is None:
            import boto3  # lazy: off the cold-start path
            from botocore.config import Config

            self._client = boto3.client(
                "ses",
                region_name=self._settings.region,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3,
                              read_timeout=5),
            )
        return self._client

    def send(self, email: Email) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if email.needs_raw:
                response = self._ses().send_raw_email(
                    Source=self._settings.mail_sender,
                    Destinations=[email.to],
                    RawMessage={"Data": mime_message(self._settings.mail_sender, email)},
                )
            else:
                response = self._ses().send_email(
                    Source=self._settings.mail_sender,
                    Destination={"ToAddresses": [email.to]},
                    Message={
                        "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Html": {"Data": email.html, "Charset": "UTF-8"},
                            "Text": {"Data": email.text, "Charset": "UTF-8"},
                        },
                    },
                )
        except (BotoCoreError, ClientError) as exc:
            raise MailError(str(exc)) from exc
        return str(response["MessageId"])
