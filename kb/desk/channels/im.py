"""Instant-messaging intake: a webhook for QQ-style bots in the OneBot v11 event format (go-cqhttp, NapCat, LLOneBot).

A private or group ``message`` event opens a ticket (channel ``im``, requester ``QQ:<user_id> <nickname>``), or is
threaded onto one as a work note when it quotes an earlier message of that ticket (``[CQ:reply,id=N]``) or names
its number (``T00000042``). A new ticket goes through :meth:`kb.desk.intake.TicketDesk.take_in`, with the same
suggestions, recorded, as the web form. The answer is OneBot's quick operation ``{"reply": ...}``: the bot sends the
ticket number back, with the best suggested article when the match is confident (a first chance of deflection).
"""

from __future__ import annotations

import re
from typing import Any

from kb.desk.intake import TicketDesk
from kb.desk.workflow import NewTicket
from kb.errors import InvalidInputError

CQ_REPLY = re.compile(r"\[CQ:reply,id=(-?\d+)[^\]]*\]")
CQ_CODE = re.compile(r"\[CQ:[^\]]*\]")
TICKET_NUMBER = re.compile(r"\bT\d{8}\b")


def handle_event(tickets: TicketDesk, event: dict[str, Any], service: str) -> dict[str, Any]:
    """Handle one OneBot v11 event; returns the quick-operation answer (``{}`` for events that are not messages).

    Raises:
        InvalidInputError: a message event without a user or without text.
    """
    if event.get("post_type") != "message":
        return {}
    user = event.get("user_id")
    raw = str(event.get("raw_message") or event.get("message") or "")
    text = CQ_CODE.sub("", raw).strip()
    if user is None or not text:
        raise InvalidInputError("A message event needs a user_id and some text.")
    nickname = str((event.get("sender") or {}).get("nickname") or "").strip()
    requester = f"QQ:{user}" + (f" {nickname}" if nickname else "")
    message_key = f"onebot:{event.get('message_id')}" if event.get("message_id") is not None else None
    quoted = CQ_REPLY.search(raw)
    number = TICKET_NUMBER.search(CQ_CODE.sub("", raw))
    ticket_id = tickets.thread_of([f"onebot:{quoted[1]}"] if quoted else [], number[0] if number else None)
    actor = f"im:{user}"
    if ticket_id is not None:
        noted = tickets.follow_up(ticket_id, f"{requester}：{text}", actor, message_key=message_key).ticket
        return {"reply": f"已记录到工单 {noted.external_id}。"}
    new = NewTicket(
        title=text.splitlines()[0][:80], description=text, service=service, channel="im", requester=requester
    )
    handled = tickets.take_in(new, actor, message_key=message_key)
    reply = f"已受理，工单号 {handled.ticket.external_id}。"
    found = handled.suggestions
    if found is not None and found.articles and not found.low_confidence:
        best = found.articles[0]
        reply += f"可以先参考知识库文章《{best.title}》（#{best.article_id}）。"
    return {"reply": reply}
