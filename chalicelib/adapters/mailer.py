"""Email through Amazon SES (boto3), HTML and text parts, UTF-8."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from chalicelib.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str


class MailError(Exception):
    """SES did not take the message (after botocore's own retries)."""


class Mailer(Protocol):
    def send(self, email: Email) -> str:
        """Send and return the provider's message id; raise MailError."""


class SesMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = None

    def _ses(self):  # type: ignore[no-untyped-def]
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
