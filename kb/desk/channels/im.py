"""Instant-messaging intake: a webhook for QQ-style bots in the OneBot v11 event format (go-cqhttp, NapCat, LLOneBot).

A private or group ``message`` event opens a ticket (channel ``im``, requester ``QQ:<user_id>``), or is
threaded onto one as a work note when it quotes an earlier message of that ticket (``[CQ:reply,id=N]``) or names
its number (``T00000042``) and the sender is that ticket's requester (:mod:`kb.desk.senders`; anyone else's
message opens a new ticket, answered like any other). A new ticket goes through
:meth:`kb.desk.intake.TicketDesk.take_in`, with the same suggestions, recorded, as the web form. The answer is
OneBot's quick operation ``{"reply": ...}``: the bot sends the ticket number back, with the best suggested article
when the match is confident (a first chance of deflection).

Who acts: the body is signed by the bot (``X-Signature``, checked before this module runs), so ``user_id`` is the
sender as the bot reports it, and only that number is recorded, as the requester ``QQ:<user_id>``. Every write is
made by the configured bot principal (``KB_IM_ACTOR``, e.g. ``im:bot``), never by a name from the body: the
sender's ``nickname``/``card`` are free text the sender chooses, kept only as a label inside the ticket text
(``昵称``), and neither the actor nor the requester can equal a kb user name (those have no ``:``).

A message is remembered by its ``message_id`` (a second delivery answers "该消息已受理" with its ticket, unchanged),
qualified by the sender when another sender's ticket already holds that id
(:meth:`kb.desk.intake.TicketDesk.message_key_for`): a reused id never answers another sender's ticket number.
"""

from __future__ import annotations

import re
from typing import Any

from kb.desk.intake import TicketDesk
from kb.desk.senders import channel_context
from kb.desk.workflow import NewTicket
from kb.errors import InvalidInputError

CQ_REPLY = re.compile(r"\[CQ:reply,id=(-?\d+)[^\]]*\]")
CQ_CODE = re.compile(r"\[CQ:[^\]]*\]")
TICKET_NUMBER = re.compile(r"\bT\d{8}\b")
MAX_NICKNAME = 60
#: The bot's answer to a message threaded onto a ticket, by the intake's outcome.
_REPLIES = {
    "noted": "已记录到工单 {number}。",
    "reopened": "工单 {number} 已重新打开，已记录您的消息。",
    "follow_up": "原工单已关闭，已为您新建跟进工单 {number}。",
    "duplicate": "该消息已受理，工单号 {number}。",
}


def handle_event(tickets: TicketDesk, event: dict[str, Any], service: str, actor: str) -> dict[str, Any]:
    """Handle one OneBot v11 event as ``actor`` (the bot principal, ``KB_IM_ACTOR``); returns the quick-operation
    answer (``{}`` for events that are not messages). New tickets get ``service``.

    Raises:
        InvalidInputError: a message event without a user or without text.
    """
    with channel_context(actor, "im"):  # audit rows of what it changes name the IM channel
        return _handle(tickets, event, service, actor)


def _handle(tickets: TicketDesk, event: dict[str, Any], service: str, actor: str) -> dict[str, Any]:
    if event.get("post_type") != "message":
        return {}
    user = _id_of(event.get("user_id"), "user_id")
    raw = _text_of(event.get("raw_message") or event.get("message"))
    text = CQ_CODE.sub("", raw).strip()
    if user is None or not text:
        raise InvalidInputError("A message event needs a user_id and some text.")
    requester = f"QQ:{user}"
    label = requester + (f"（昵称：{name}）" if (name := _nickname(event.get("sender"))) else "")
    message_id = _id_of(event.get("message_id"), "message_id")
    message_key = tickets.message_key_for(requester, f"onebot:{message_id}" if message_id is not None else None)
    quoted = CQ_REPLY.search(raw)
    number = TICKET_NUMBER.search(CQ_CODE.sub("", raw))
    keys = [f"onebot:{quoted[1]}"] if quoted else []
    named = number[0] if number else None
    ticket_id = tickets.thread_for(requester, keys, named, actor=actor, channel="im", message_key=message_key)
    if ticket_id is not None:
        handled = tickets.follow_up(
            ticket_id, f"{label}：{text}", actor, message_key=message_key, channel="im", requester=requester
        )
        return {"reply": _REPLIES[handled.outcome].format(number=handled.ticket.external_id)}
    description = text if label == requester else f"{text}\n\n{label}"
    new = NewTicket(
        title=text.splitlines()[0][:80], description=description, service=service, channel="im", requester=requester
    )
    handled = tickets.take_in(new, actor, message_key=message_key)
    if handled.outcome == "duplicate":
        return {"reply": _REPLIES["duplicate"].format(number=handled.ticket.external_id)}
    reply = f"已受理，工单号 {handled.ticket.external_id}。"
    found = handled.suggestions
    if found is not None and found.articles and not found.low_confidence:
        best = found.articles[0]
        reply += f"可以先参考知识库文章《{best.title}》（#{best.article_id}）。"
    return {"reply": reply}


def _nickname(sender: Any) -> str:
    """The sender's group card, else nickname, as a display label (at most :data:`MAX_NICKNAME` characters; ""
    when there is none). Free text the sender chose: never an identity."""
    if not isinstance(sender, dict):
        return ""
    card = _text_of(sender.get("card")).strip()
    return (card or _text_of(sender.get("nickname")).strip())[:MAX_NICKNAME].strip()


def _id_of(value: Any, name: str) -> int | None:
    """A OneBot numeric id (``user_id``, ``message_id``): an integer, or digits in a string; None when absent.

    Raises:
        InvalidInputError: anything else (an object, a fraction, more than 20 digits).
    """
    if value is None:
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        raise InvalidInputError(f"{name} must be a 64-bit integer.")
    return value


def _text_of(value: Any) -> str:
    """The text of a OneBot message: a string, or the ``text`` segments of the array form; "" otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [
            str(seg.get("data", {}).get("text", ""))
            for seg in value
            if isinstance(seg, dict) and seg.get("type") == "text" and isinstance(seg.get("data"), dict)
        ]
        return "".join(parts)
    return ""
