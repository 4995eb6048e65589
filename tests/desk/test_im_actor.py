"""Who acts on an IM message (issue 10): the signed bot's principal (``KB_IM_ACTOR``), never a name from the body.
The sender is recorded only by the number the bot reports (requester ``QQ:<user_id>``); a ``nickname`` or group
``card`` equal to a kb user name is a label in the text and grants nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from kb.config import Settings
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from kb.web.app import create_app
from tests.helpers import TEST_USER, anonymous, kb_of, login, onebot, post_im

GOOD = "Zhang-San-2026!"


def _as(event: dict[str, object], **sender: str) -> dict[str, object]:
    """``event`` with extra fields in its ``sender`` object."""
    return event | {"sender": {**event["sender"], **sender}}  # type: ignore[dict-item]


@pytest.mark.security
def test_a_nickname_or_card_naming_a_kb_user_is_not_the_actor(client: TestClient) -> None:
    kb = kb_of(client)
    spoof = _as(onebot(701, "打印机脱机，无法打印", user_id=10001), nickname=TEST_USER, card="admin")
    assert post_im(client, spoof).status_code == 200
    follow = _as(onebot(702, "[CQ:reply,id=701]重启也不行", user_id=10001), nickname="admin", card=TEST_USER)
    assert post_im(client, follow).json() == {"reply": "已记录到工单 T00000001。"}
    ticket = kb.desk.get(1)
    assert ticket.requester == "QQ:10001"
    assert [(e.kind, e.actor) for e in kb.desk.events(1)] == [
        ("created", "im:bot"), ("suggested", "im:bot"), ("note", "im:bot")
    ]  # fmt: skip
    # the card (chosen by the sender) is only a label in the text, next to the number the bot vouches for
    assert ticket.description.endswith("QQ:10001（昵称：admin）")
    assert "QQ:10001（昵称：" + TEST_USER + "）：重启也不行" in (ticket.work_notes or "")


def test_a_requester_named_in_the_body_does_not_see_the_ticket(client: TestClient) -> None:
    kb_of(client).accounts.create("zhang.san", ["requester"], "tests", password=GOOD, must_change=False)
    spoof = _as(onebot(711, "VPN 连不上", user_id=10002), nickname="zhang.san", card="zhang.san")
    spoof |= {"user_id": 10002, "requester": "zhang.san", "actor": "zhang.san"}
    assert post_im(client, spoof).status_code == 200
    zhang = anonymous(client)
    login(zhang, "zhang.san", GOOD)
    assert zhang.get("/tickets/1").status_code == 404
    assert zhang.get("/tickets").json()["items"] == []
    assert client.get("/tickets/1").json()["ticket"]["requester"] == "QQ:10002"


def test_the_actor_is_the_configured_bot_principal(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    configured = settings.model_copy(update={"im_actor": "im:qq-desk-bot"})
    service = KnowledgeBase(configured, embedder=hash_embedder, analyzer=analyzer)
    with TestClient(create_app(configured, kb=service), base_url="https://testserver") as bot_client:
        assert post_im(bot_client, onebot(721, "邮箱满了")).status_code == 200
        assert {e.actor for e in kb_of(bot_client).desk.events(1)} == {"im:qq-desk-bot"}


def test_the_bot_principal_cannot_be_a_kb_user_name() -> None:
    for bad in ("admin", TEST_USER, "im:", "im:a b"):
        with pytest.raises(ValidationError):
            Settings(im_actor=bad)
