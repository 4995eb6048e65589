"""Instant-messaging intake: a webhook for QQ-style bots in the OneBot v11 event format (go-cqhttp, NapCat, LLOneBot).

A private or group ``message`` event opens a ticket (channel ``im``, requester ``QQ:<user_id> <nickname>``), or is
threaded onto one as a work note when it quotes an earlier message of that ticket (``[CQ:reply,id=N]``) or names
its number (``T00000042``). The answer is OneBot's quick operation ``{"reply": ...}``: the bot sends the ticket
number back, with the best article when the match is confident (a first chance of deflection).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kb.desk.workflow import Intake
from kb.errors import InvalidInputError
from kb.search.results import SearchRequest

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

CQ_REPLY = re.compile(r"\[CQ:reply,id=(-?\d+)[^\]]*\]")
CQ_CODE = re.compile(r"\[CQ:[^\]]*\]")
TICKET_NUMBER = re.compile(r"\bT\d{8}\b")


def handle_event(kb: KnowledgeBase, event: dict[str, Any], service: str) -> dict[str, Any]:
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
    ticket_id = _thread_of(kb, raw)
    if ticket_id is not None:
        kb.desk.note(ticket_id, f"{requester}：{text}", f"im:{user}")
        if message_key:
            kb.desk.remember_message(message_key, ticket_id)
        return {"reply": f"已记录到工单 {kb.desk.get(ticket_id).external_id}。"}
    first_line = text.splitlines()[0]
    ticket = kb.desk.intake(
        Intake(title=first_line[:80], description=text, service=service, channel="im", requester=requester),
        f"im:{user}",
    )
    if message_key:
        kb.desk.remember_message(message_key, ticket.id)
    reply = f"已受理，工单号 {ticket.external_id}。"
    result = kb.search(SearchRequest(text[:1000], limit=1))
    if result.results and not result.low_confidence:
        reply += f"可以先参考知识库文章《{result.results[0].title}》（#{result.results[0].article_id}）。"
    return {"reply": reply}


def _thread_of(kb: KnowledgeBase, raw: str) -> int | None:
    quoted = CQ_REPLY.search(raw)
    number = TICKET_NUMBER.search(CQ_CODE.sub("", raw))
    return kb.desk.thread_of([f"onebot:{quoted[1]}"] if quoted else [], number[0] if number else None)
