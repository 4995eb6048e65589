"""E-mail intake over SMTP (aiosmtpd): each message opens a ticket, a reply is threaded onto its ticket.

A reply is recognised by ``In-Reply-To`` / ``References`` naming a message already on a ticket, or by the ticket
number in the subject (``[T00000042]``, what the desk's own mails carry), when the sender may write that ticket
(its requester or a desk account on it, :mod:`kb.desk.senders`; anyone else's mail opens a new ticket); it
becomes a work note, or reopens a closed ticket / opens a linked follow-up
(:meth:`kb.desk.intake.TicketDesk.follow_up`). Any other message opens a
ticket (channel ``email``, service ``intake_default_service``, requester = sender) through
:meth:`kb.desk.intake.TicketDesk.take_in`, with the same suggestions, recorded, as the web form. A second delivery
of the same ``Message-ID`` is answered ``250`` and changes nothing; a ``Message-ID`` that another sender's ticket
holds is remembered qualified by the sender (:meth:`kb.desk.intake.TicketDesk.message_key_for`), so it neither
threads onto nor is dropped as a duplicate of that ticket. Headers and bodies are decoded by
:mod:`kb.desk.channels.mail_text` (GBK/GB18030, raw 8-bit headers, HTML-only mail).

A message without a sender, or with neither subject nor text, is refused with ``550`` (the sending server bounces
it) and logged; text beyond the intake limit with ``552``; nothing is written. Run it with ``kb serve`` and
``KB_SMTP_PORT`` set, or :class:`SmtpIntake`.
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
from email.utils import parseaddr
from typing import Any

from kb.desk.channels.mail_text import body_text, header_text
from kb.desk.intake import TicketDesk
from kb.desk.senders import channel_context
from kb.desk.workflow import NewTicket
from kb.errors import InvalidInputError, KBError, PayloadTooLargeError
from kb.identity.hardening import check_sender_domain
from kb.models import utcnow

logger = logging.getLogger(__name__)

TICKET_NUMBER = re.compile(r"\[(T\d{8})\]")


@dataclass(frozen=True)
class MailResult:
    """What a message did: the ticket it opened or was threaded onto, whether it was a reply, and the intake's
    outcome (``opened``, ``noted``, ``reopened``, ``follow_up``, ``duplicate``)."""

    ticket_id: int
    threaded: bool
    outcome: str = "opened"


def handle_message(tickets: TicketDesk, raw: bytes, service: str, sender_domains: Sequence[str] = ()) -> MailResult:
    """Open a ticket from ``raw`` (RFC 5322 bytes) or thread it onto the ticket it answers.

    Raises:
        InvalidInputError: no sender, or neither subject nor text (the SMTP layer answers 550).
        PayloadTooLargeError: more text than the intake takes (552).
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)  # keeps raw 8-bit header bytes
    sender = parseaddr(header_text(message, "From"))[1]
    subject = header_text(message, "Subject")
    text = body_text(message)
    if not sender or "@" not in sender:
        raise InvalidInputError("The message has no sender address.")
    check_sender_domain(sender, sender_domains)  # KB_EMAIL_SENDER_DOMAINS (kb.identity.hardening)
    if not subject and not text:
        raise InvalidInputError("The message has neither a subject nor any text.")
    message_id = header_text(message, "Message-ID")[:500] or f"<kb-{utcnow().timestamp()}@{sender}>"
    message_id = tickets.message_key_for(sender, message_id) or message_id  # another sender's: qualified
    referenced = header_text(message, "In-Reply-To").split() + header_text(message, "References").split()
    number = TICKET_NUMBER.search(subject)
    actor = f"mail:{sender}"
    with channel_context(actor, "email"):
        named = number[1] if number else None
        ticket_id = tickets.thread_for(sender, referenced, named, actor=actor, channel="email", message_key=message_id)
        if ticket_id is not None:
            note = f"来自 {sender} 的邮件：{subject}\n{text}".strip()
            handled = tickets.follow_up(
                ticket_id, note, actor, message_key=message_id, channel="email", requester=sender
            )
            return MailResult(handled.ticket.id, True, handled.outcome)
        new = NewTicket(
            title=subject or text.splitlines()[0][:200], description=text, service=service, channel="email",
            requester=sender,
        )  # fmt: skip
        handled = tickets.take_in(new, actor, message_key=message_id)
        return MailResult(handled.ticket.id, False, handled.outcome)


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
        except PayloadTooLargeError as exc:  # RFC 5321 4.5.3.1.10 / RFC 3463 5.3.4: message too big
            logger.warning("mail from %s refused: %s", envelope.mail_from, exc.message)
            return f"552 5.3.4 {exc.message}"
        except KBError as exc:
            logger.warning("mail from %s refused: %s", envelope.mail_from, exc.message)
            return f"550 5.6.0 {exc.message}"
        logger.info("mail from %s -> ticket %s (%s)", envelope.mail_from, result.ticket_id, result.outcome)
        # One answer for a new message, a threaded one and a second delivery: the reply text names no internal
        # ticket id and does not tell a sender that a Message-ID was taken in before (session 8's outside tester).
        return "250 OK"


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
