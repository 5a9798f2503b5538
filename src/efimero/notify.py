"""E-mail notifications, as the MLOps guide's Airflow DAG sends them (``email_on_failure``, a success e-mail).

One :class:`Notifier`, built from ``retraining.notifications``
(:class:`~efimero.config.NotificationSettings`), serves every sender: `efimero auto-retrain` at the end
of a run (``failure``, ``success``) and the monitor's alerts beside the webhook (``alert``). A message is
plain text with the facts in its body and the record it is about (the run, the alerts) attached as JSON.

Sending never raises: a server that is down, refuses the login or a recipient gives a
:class:`Notification` with status ``failed`` and the reason, logged as a warning, for the caller to keep
(the run record, the alert's delivery error). The password never appears in a log, a message or a dump.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from efimero.config import NotificationEvent, NotificationSettings

logger = logging.getLogger(__name__)

__all__ = ["Notification", "Notifier"]


@dataclass(frozen=True)
class Notification:
    """What became of one e-mail: ``sent``, ``skipped`` (e-mail off, or the event not in ``on``) or ``failed``."""

    event: str
    status: Literal["sent", "skipped", "failed"]
    subject: str
    to: tuple[str, ...] = ()
    detail: str | None = None
    """Why it was skipped or failed; None once sent."""
    sent_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "to": list(self.to), "sent_at": self.sent_at.isoformat() if self.sent_at else None}


class Notifier:
    """Sends the e-mails of ``retraining.notifications``; does nothing while it is off (no host or no recipient).

    Example:
        >>> from efimero.config import NotificationSettings
        >>> Notifier(NotificationSettings()).send("failure", "run failed", "the run failed").status
        'skipped'
    """

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def wants(self, event: NotificationEvent) -> bool:
        """Whether ``event`` sends an e-mail: e-mail is on and ``event`` is one of ``on``."""
        return self.enabled and event in self.settings.on

    def send(self, event: NotificationEvent, subject: str, body: str, *,
             attachment: Mapping[str, Any] | list[Any] | None = None, filename: str = "record.json") -> Notification:
        """E-mail ``subject`` (after ``subject_prefix``) and ``body`` to ``to``, with ``attachment`` as JSON.

        Never raises (a server that is down or says no, a bug here): the result says whether it was sent,
        and why not; a failure is also logged as a warning.
        """
        settings = self.settings
        subject = f"{settings.subject_prefix} {subject}".strip() if settings.subject_prefix else subject
        subject = " ".join(subject.split())  # no line breaks in a header
        if not self.enabled:
            return Notification(event, "skipped", subject, detail="e-mail is off (no smtp.host or no recipient)")
        if event not in settings.on:
            return Notification(event, "skipped", subject, settings.to,
                                detail=f"{event} is not one of notifications.on ({', '.join(settings.on) or 'none'})")
        try:
            refused = self._deliver(self._message(subject, body, attachment, filename))
        except (OSError, smtplib.SMTPException, ValueError) as exc:  # OSError covers refused, timeout, TLS
            detail = _describe(exc)
        except Exception as exc:  # a bug, logged with its traceback; still never the sender's failure
            logger.exception("%s e-mail could not be built or sent", event)
            detail = f"unexpected {_describe(exc)}"
        else:
            if not refused:
                logger.info("%s e-mail sent to %s: %s", event, ", ".join(settings.to), subject)
                return Notification(event, "sent", subject, settings.to, sent_at=datetime.now(UTC))
            detail = "refused recipients: " + "; ".join(
                f"{address} ({code} {reply.decode(errors='replace')})" for address, (code, reply) in refused.items())
        smtp = settings.smtp
        logger.warning("%s e-mail to %s through %s:%s was not sent: %s", event, ", ".join(settings.to), smtp.host,
                       smtp.effective_port, detail)
        return Notification(event, "failed", subject, settings.to, detail=detail)

    def _message(self, subject: str, body: str, attachment: Mapping[str, Any] | list[Any] | None,
                 filename: str) -> EmailMessage:
        settings = self.settings
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = settings.smtp.from_address
        message["To"] = ", ".join(settings.to)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid("efimero", domain=settings.smtp.from_address.rpartition("@")[2])
        message.set_content(f"{body.rstrip()}\n\n-- \nefimero on {socket.gethostname()}\n")
        if attachment is not None:
            text = json.dumps(attachment, indent=2, default=str, ensure_ascii=False)
            message.add_attachment(text.encode("utf-8"), maintype="application", subtype="json", filename=filename)
        return message

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Connect, upgrade, log in and send; the recipients the server refused (all refused raises)."""
        smtp = self.settings.smtp
        context = ssl.create_default_context()
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(smtp.host, smtp.effective_port, timeout=smtp.timeout_s, context=context) if smtp.ssl
            else smtplib.SMTP(smtp.host, smtp.effective_port, timeout=smtp.timeout_s))
        with client:
            if smtp.starttls:
                client.starttls(context=context)
            if smtp.username:
                password = smtp.password.get_secret_value() if smtp.password is not None else ""
                client.login(smtp.username, password)
            elif smtp.password is not None:
                raise ValueError("notifications.smtp.password is set but smtp.username is not; set the user to "
                                 "log in as, or unset the password")
            return client.send_message(message)


def _describe(exc: BaseException) -> str:
    """The failure in words: the exception's class and message (smtplib's carry the server's reply, never the
    password, which is only ever sent base64-encoded inside AUTH)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {reply}"
    return f"{type(exc).__name__}: {exc}"
