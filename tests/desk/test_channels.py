"""One intake use case for every channel: web form, e-mail over SMTP, IM webhook and the hotline (an agent logging a
call through the API) give the same suggestions for the same words, and record them on the ticket."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kb.ingest.tickets import import_tickets
from kb.service import KnowledgeBase
from tests.helpers import EXPORT, NO_LICENSES, create, mail, onebot, post_im, send

TITLE = "远程桌面连不上"
DESCRIPTION = "提示没有可用的远程桌面授权服务器，VPN 已连接"


def _recorded(client: TestClient, ticket_id: int) -> dict[str, Any]:
    events = client.get(f"/tickets/{ticket_id}").json()["events"]
    suggested = [e for e in events if e["kind"] == "suggested"]
    assert len(suggested) == 1, events
    return {k: suggested[0][k] for k in ("articles", "similar", "group", "low_confidence")}


def test_every_channel_gives_and_records_the_same_suggestions(
    smtp: tuple[KnowledgeBase, int], client: TestClient
) -> None:
    kb, port = smtp
    article = create(client, NO_LICENSES, visibility="public")  # e-mail and IM callers see public articles
    import_tickets(kb.database, EXPORT, "kb-zh")
    assert kb.ticket_vectors.embed_closed() > 0

    web = client.post("/tickets", json={"title": TITLE, "description": DESCRIPTION, "service": "日常服务"})
    phone = client.post(
        "/tickets", json={"title": TITLE, "description": DESCRIPTION, "service": "日常服务", "channel": "phone"}
    )
    assert web.status_code == phone.status_code == 201
    send(port, mail(TITLE, DESCRIPTION, Message_ID="<same-words@example.com>"))
    im = post_im(client, onebot(777, f"{TITLE}\n{DESCRIPTION}"))
    assert im.status_code == 200 and "已受理" in im.json()["reply"]

    ids = {"web": web.json()["ticket"]["id"], "phone": phone.json()["ticket"]["id"]}
    channels = {t.channel: t.id for t in kb.desk.open_tickets()}
    ids |= {"email": channels["email"], "im": channels["im"]}
    assert set(channels) == {"web", "phone", "email", "im"}

    recorded = {channel: _recorded(client, ticket_id) for channel, ticket_id in ids.items()}
    assert recorded["web"]["articles"][0] == article["id"]  # suggestions were made, not empty lists
    assert recorded["web"]["similar"] and recorded["web"]["group"]
    for channel in ("phone", "email", "im"):
        assert recorded[channel] == recorded["web"], channel
    assert web.json()["suggestions"] == phone.json()["suggestions"]
    assert [a["article_id"] for a in web.json()["suggestions"]["articles"]] == recorded["web"]["articles"]
