"""Who may continue a ticket by e-mail or IM (kb.desk.senders): its requester, or a desk account that may work it.
Anyone else quoting or naming a ticket opens a new ticket, answered like any other, so the answer never confirms
that a number exists; the attempt is audited, and so are the notes and reopenings the channels write."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kb.service import KnowledgeBase
from tests.helpers import kb_of, mail, onebot, post_im, send

OWNER, STRANGER = 10001, 10002


def _audit(kb: KnowledgeBase, event: str) -> list[tuple[str, str, str, str]]:
    """(actor, channel, object, result) of the audit rows of ``event``, oldest first."""
    _, rows = kb.audit.query(event=event)
    return [(r.actor, r.channel, r.object, r.result) for r in reversed(rows)]


def _close(client: TestClient, ticket_id: int) -> None:
    client.post(f"/tickets/{ticket_id}/assign", json={"group": "桌面组"})
    for status in ("in_progress", "resolved"):
        assert client.post(f"/tickets/{ticket_id}/status", json={"status": status}).status_code == 200
    closed = client.post(f"/tickets/{ticket_id}/close", json={"resolution": "重装驱动", "root_cause": "驱动损坏"})
    assert closed.status_code == 200, closed.text


@pytest.mark.security
def test_an_im_sender_cannot_add_to_or_reopen_someone_elses_ticket(client: TestClient) -> None:
    kb = kb_of(client)
    opened = post_im(client, onebot(801, "打印机脱机", user_id=OWNER)).json()["reply"]
    assert opened.startswith("已受理，工单号 T00000001")
    before = [e.kind for e in kb.desk.events(1)]

    named = post_im(client, onebot(802, "T00000001 还是不行", user_id=STRANGER)).json()["reply"]
    quoted = post_im(client, onebot(803, "[CQ:reply,id=801]我也一样", user_id=STRANGER)).json()["reply"]
    missing = post_im(client, onebot(804, "T00000099 还是不行", user_id=STRANGER)).json()["reply"]
    again = post_im(client, onebot(802, "T00000001 还是不行", user_id=STRANGER)).json()["reply"]
    assert again == "该消息已受理，工单号 T00000002。"  # a second delivery: nothing written, nothing audited
    plain = post_im(client, onebot(805, "还是不行", user_id=STRANGER)).json()["reply"]
    # each opened a ticket of its own, answered the same way whether the number exists or not
    assert [r.split("。")[0] for r in (named, quoted, missing, plain)] == [
        f"已受理，工单号 T0000000{n}" for n in (2, 3, 4, 5)
    ]
    assert [e.kind for e in kb.desk.events(1)] == before and "还是不行" not in (kb.desk.get(1).work_notes or "")
    assert {kb.desk.get(n).requester for n in (2, 3, 4, 5)} == {f"QQ:{STRANGER}"}
    assert _audit(kb, "ticket.thread") == [
        ("im:bot", "im", "T00000001", "denied"), ("im:bot", "im", "T00000001", "denied"),
        ("im:bot", "im", "T00000099", "denied"),
    ]  # fmt: skip

    _close(client, 1)
    assert post_im(client, onebot(806, "T00000001 reopen", user_id=STRANGER)).json()["reply"].startswith("已受理")
    assert kb.desk.get(1).status == "closed"

    # the requester still threads, reopens, and both are audited on the IM channel
    assert post_im(client, onebot(807, "T00000001 又坏了", user_id=OWNER)).json()["reply"] == (
        "工单 T00000001 已重新打开，已记录您的消息。"
    )
    assert post_im(client, onebot(808, "[CQ:reply,id=807]还是脱机", user_id=OWNER)).json()["reply"] == (
        "已记录到工单 T00000001。"
    )
    assert kb.desk.get(1).status == "in_progress"
    assert _audit(kb, "ticket.reopen") == [("im:bot", "im", "ticket 1", "success")]
    assert _audit(kb, "ticket.note") == [("im:bot", "im", "ticket 1", "success")]


@pytest.mark.security
def test_an_email_sender_threads_only_onto_tickets_they_may_write(
    smtp: tuple[KnowledgeBase, int], client: TestClient
) -> None:
    kb, port = smtp
    send(port, mail("共享盘无法访问", "S 盘打不开。", sender="wang.qiang@example.com", Message_ID="<e1@example.com>"))
    kb.accounts.create(
        "li.agent@example.com", ["agent"], "tests", groups=["桌面组"], password="Li-Agent-2026!", must_change=False
    )
    kb.accounts.create(
        "zhao.net@example.com", ["agent"], "tests", groups=["网络组"], password="Zhao-Net-2026!", must_change=False
    )
    kb.accounts.create("qian.req@example.com", ["requester"], "tests", password="Qian-Req-2026!", must_change=False)
    client.post("/tickets/1/assign", json={"group": "桌面组"})

    send(port, mail("Re: [T00000001] 共享盘", "我也打不开", sender="other@example.com", Message_ID="<x1@x>"))
    send(port, mail("Re: 共享盘", "我也是", sender="other@example.com", In_Reply_To="<e1@example.com>",
                    Message_ID="<x2@x>"))  # fmt: skip
    send(port, mail("Re: [T00000001] 共享盘", "网络组看看", sender="zhao.net@example.com", Message_ID="<x3@x>"))
    send(port, mail("Re: [T00000001] 共享盘", "我是请求人", sender="qian.req@example.com", Message_ID="<x4@x>"))
    assert [kb.desk.get(n).requester for n in (2, 3, 4, 5)] == [
        "other@example.com", "other@example.com", "zhao.net@example.com", "qian.req@example.com"
    ]  # fmt: skip
    assert [e.kind for e in kb.desk.events(1)] == ["created", "suggested", "assigned"]
    assert [(r[0], r[1], r[2], r[3]) for r in _audit(kb, "ticket.thread")] == [
        ("mail:other@example.com", "email", "T00000001", "denied"),
        ("mail:other@example.com", "email", "T00000001", "denied"),
        ("mail:zhao.net@example.com", "email", "T00000001", "denied"),
        ("mail:qian.req@example.com", "email", "T00000001", "denied"),
    ]

    # the requester (any case) and an agent of the ticket's group thread onto it; the notes are audited
    send(port, mail("Re: [T00000001] 共享盘", "补充：映射失败", sender="Wang.Qiang@Example.com", Message_ID="<y1@x>"))
    send(port, mail("Re: [T00000001] 共享盘", "已远程查看", sender="li.agent@example.com", Message_ID="<y2@x>"))
    assert [e.kind for e in kb.desk.events(1)][-2:] == ["note", "note"]
    assert client.get("/tickets/6").status_code == 404
    assert _audit(kb, "ticket.note") == [
        ("mail:Wang.Qiang@Example.com", "email", "ticket 1", "success"),
        ("mail:li.agent@example.com", "email", "ticket 1", "success"),
    ]


@pytest.mark.security
def test_a_message_id_reused_by_another_sender_never_answers_the_first_senders_ticket(
    smtp: tuple[KnowledgeBase, int], client: TestClient
) -> None:
    """Found by session 8's outside tester: QQ user 444 sending message_id 7001, already used by 333, was dropped
    and told 333's ticket number. The same for an e-mail Message-ID reused by another sender address."""
    kb, port = smtp
    assert (
        post_im(client, onebot(7001, "打印机脱机", user_id=333)).json()["reply"].startswith("已受理，工单号 T00000001")
    )
    other = post_im(client, onebot(7001, "邮箱登录不了", user_id=444)).json()["reply"]
    assert other.startswith("已受理，工单号 T00000002") and "T00000001" not in other
    assert kb.desk.get(2).requester == "QQ:444" and "邮箱" not in (kb.desk.get(1).work_notes or "")
    # a second delivery from either sender is a duplicate of their own ticket, nothing written
    assert (
        post_im(client, onebot(7001, "邮箱登录不了", user_id=444)).json()["reply"] == "该消息已受理，工单号 T00000002。"
    )
    assert (
        post_im(client, onebot(7001, "打印机脱机", user_id=333)).json()["reply"] == "该消息已受理，工单号 T00000001。"
    )
    # the requester still threads by quoting their own message
    quoted = post_im(client, onebot(7002, "[CQ:reply,id=7001]还是不行", user_id=444)).json()["reply"]
    assert quoted == "已记录到工单 T00000002。"

    send(port, mail("共享盘无法访问", "S 盘打不开。", sender="wang.qiang@example.com", Message_ID="<m1@example.com>"))
    events = [e.kind for e in kb.desk.events(3)]
    send(port, mail("VPN 连不上", "VPN 报错 809", sender="other@example.com", Message_ID="<m1@example.com>"))
    send(port, mail("VPN 连不上", "VPN 报错 809", sender="other@example.com", Message_ID="<m1@example.com>"))
    assert kb.desk.get(4).requester == "other@example.com" and "809" in kb.desk.get(4).description
    assert [e.kind for e in kb.desk.events(3)] == events and "809" not in (kb.desk.get(3).work_notes or "")
    assert client.get("/tickets/5").status_code == 404  # the second delivery opened nothing
