"""E-mail intake over SMTP (aiosmtpd): each message opens a ticket, a reply is threaded onto its ticket.

A reply is recognised by ``In-Reply-To`` / ``References`` naming a message already on a ticket, or by the ticket
number in the subject (``[T00000042]``, what the desk's own mails carry); it becomes a work note (event ``email``).
Any other message opens a ticket (channel ``email``, service ``intake_default_service``, requester = sender) through
:meth:`kb.desk.intake.TicketDesk.take_in`, with the same suggestions, recorded, as the web form.

A message without a sender, or with neither subject nor text, is refused with ``550`` (the sending server bounces
it) and logged; nothing is written. Run it with ``kb serve`` and ``KB_SMTP_PORT`` set, or :class:`SmtpIntake`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any

from kb.desk.intake import TicketDesk
from kb.desk.workflow import NewTicket
from kb.errors import InvalidInputError, KBError
from kb.identity.hardening import check_sender_domain
from kb.models import utcnow

logger = logging.getLogger(__name__)

TICKET_NUMBER = re.compile(r"\[(T\d{8})\]")
MAX_BODY_CHARS = 20_000


@dataclass(frozen=True)
class MailResult:
    """What a message did: the ticket it opened or was threaded onto, and whether it was a reply."""

    ticket_id: int
    threaded: bool


def handle_message(tickets: TicketDesk, raw: bytes, service: str, sender_domains: Sequence[str] = ()) -> MailResult:
    """Open a ticket from ``raw`` (RFC 5322 bytes) or thread it onto the ticket it answers.

    Raises:
        InvalidInputError: no sender, or neither subject nor text (the SMTP layer answers 550).
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(str(message.get("From", "")))[1]
    subject = " ".join(str(message.get("Subject", "")).split())
    text = _text_of(message)[:MAX_BODY_CHARS]
    if not sender or "@" not in sender:
        raise InvalidInputError("The message has no sender address.")
    check_sender_domain(sender, sender_domains)  # KB_EMAIL_SENDER_DOMAINS (kb.identity.hardening)
    if not subject and not text:
        raise InvalidInputError("The message has neither a subject nor any text.")
    message_id = str(message.get("Message-ID", "")).strip() or f"<kb-{utcnow().timestamp()}@{sender}>"
    referenced = str(message.get("In-Reply-To", "")).split() + str(message.get("References", "")).split()
    number = TICKET_NUMBER.search(subject)
    ticket_id = tickets.thread_of(referenced, number[1] if number else None)
    actor = f"mail:{sender}"
    if ticket_id is not None:
        note = f"来自 {sender} 的邮件：{subject}\n{text}".strip()
        tickets.follow_up(ticket_id, note, actor, message_key=message_id)
        return MailResult(ticket_id, True)
    new = NewTicket(
        title=subject or text.splitlines()[0][:200], description=text, service=service, channel="email",
        requester=sender,
    )  # fmt: skip
    return MailResult(tickets.take_in(new, actor, message_key=message_id).ticket.id, False)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = str(part.get_content())
    if part.get_content_type() == "text/html":
        parser = _Text()
        parser.feed(content)
        content = " ".join(parser.parts)
    return "\n".join(line.rstrip() for line in content.strip().splitlines())


class SmtpHandler:
    """aiosmtpd handler: ``handle_DATA`` files each message (in a worker thread) and answers 250 or 550."""

    def __init__(self, tickets: TicketDesk, service: str, sender_domains: Sequence[str] = ()) -> None:
        self.tickets = tickets
        self.service = service
        self.sender_domains = tuple(sender_domains)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            raw = envelope.original_content or envelope.content
            result = await asyncio.to_thread(handle_message, self.tickets, raw, self.service, self.sender_domains)
        except KBError as exc:
            logger.warning("mail from %s refused: %s", envelope.mail_from, exc.message)
            return f"550 5.6.0 {exc.message}"
        logger.info("mail from %s -> ticket %s (threaded=%s)", envelope.mail_from, result.ticket_id, result.threaded)
        return f"250 OK ticket {result.ticket_id}"


class SmtpIntake:
    """An SMTP server on ``host``:``port`` feeding :func:`handle_message` (``port`` 0 picks a free one)."""

    def __init__(
        self,
        tickets: TicketDesk,
        service: str,
        host: str = "127.0.0.1",
        port: int = 2525,
        sender_domains: Sequence[str] = (),
    ) -> None:
        from aiosmtpd.controller import Controller

        if port == 0:  # aiosmtpd checks readiness by connecting to the port, so it must be known beforehand
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        self.controller = Controller(SmtpHandler(tickets, service, sender_domains), hostname=host, port=port)

    def start(self) -> tuple[str, int]:
        """Start serving in a background thread; returns the bound (host, port)."""
        self.controller.start()
        return self.controller.hostname, int(self.controller.port)

    def stop(self) -> None:
        """Stop the server."""
        self.controller.stop()
