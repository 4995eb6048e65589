"""E-mail intake through a real SMTP server (aiosmtpd) started by the test: new ticket, threaded reply, bounce."""

from __future__ import annotations

import datetime as dt
import smtplib
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient

from kb.service import KnowledgeBase
from tests.helpers import NO_LICENSES, create, mail, onebot, post_im, send


def test_mail_opens_a_ticket_and_replies_thread_onto_it(smtp: tuple[KnowledgeBase, int], client: TestClient) -> None:
    kb, port = smtp
    send(
        port, mail("邮箱容量已满，无法接收邮件", "收件箱提示容量已满，外部邮件被退回。", Message_ID="<m1@example.com>")
    )
    listed = kb.desk.get(1)
    assert (listed.channel, listed.requester, listed.title, listed.status) == (
        "email", "wang.qiang@example.com", "邮箱容量已满，无法接收邮件", "new"
    )  # fmt: skip
    send(
        port, mail("Re: 邮箱容量已满", "补充：是 Outlook 客户端。", In_Reply_To="<m1@example.com>", Message_ID="<m2@x>")
    )
    send(port, mail(f"Re: [{listed.external_id}] 进展？", "请问处理得怎样了？", Message_ID="<m3@x>"))
    send(port, mail("Re: 另一件事", "再回一封", References="<m0@x> <m2@x>", Message_ID="<m4@x>"))
    ticket = client.get("/tickets/1").json()
    assert [e["kind"] for e in ticket["events"]] == ["created", "suggested", "note", "note", "note"]
    assert "Outlook" in ticket["ticket"]["work_notes"] and "处理得怎样" in ticket["ticket"]["work_notes"]
    assert client.get("/tickets/2").status_code == 404  # no second ticket


def test_malformed_mail_bounces_and_changes_nothing(smtp: tuple[KnowledgeBase, int], client: TestClient) -> None:
    _, port = smtp
    empty = EmailMessage()
    empty["From"], empty["To"] = "someone@example.com", "helpdesk@example.com"
    with pytest.raises(smtplib.SMTPDataError) as bounced:
        send(port, empty)
    assert bounced.value.smtp_code == 550 and b"neither a subject nor any text" in bounced.value.smtp_error
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as server, pytest.raises(smtplib.SMTPDataError) as no_sender:
        server.sendmail("x@example.com", ["helpdesk@example.com"], b"Subject: hi\r\n\r\ntext\r\n")
    assert no_sender.value.smtp_code == 550
    assert client.get("/tickets/1").status_code == 404


def test_qq_bot_webhook_opens_and_threads_tickets(client: TestClient) -> None:

    article = create(client, NO_LICENSES, visibility="public")  # IM replies name public articles only
    first = post_im(client, onebot(501, "远程桌面连不上，提示没有可用的许可证"))
    assert first.status_code == 200
    reply = first.json()["reply"]
    assert reply.startswith("已受理，工单号 T00000001") and f"#{article['id']}" in reply
    follow = post_im(client, onebot(502, "[CQ:reply,id=501]重启电脑也不行"))
    assert follow.json() == {"reply": "已记录到工单 T00000001。"}
    by_number = post_im(client, onebot(503, "T00000001 有进展吗", user_id=10001)).json()  # its requester
    assert by_number == {"reply": "已记录到工单 T00000001。"}
    ticket = client.get("/tickets/1").json()["ticket"]
    assert ticket["channel"] == "im" and ticket["requester"] == "QQ:10001"
    assert "重启电脑也不行" in ticket["work_notes"] and "有进展吗" in ticket["work_notes"]
    assert post_im(client, {"post_type": "meta_event", "meta_event_type": "heartbeat"}).json() == {}
    bad = post_im(client, onebot(504, "[CQ:image,file=a.png]"))
    assert bad.status_code == 422 and client.get("/tickets/2").status_code == 404


def test_whole_loop_by_mail_feeds_distillation(smtp: tuple[KnowledgeBase, int], client: TestClient) -> None:
    """Mail in -> assign -> work -> resolve -> close with resolution and root cause -> the closed tickets distil
    into a draft article."""
    kb, port = smtp
    kb.distiller.min_group, kb.distiller.similarity = 4, 0.5
    symptoms = ["VPN 连上后 OA 打不开", "VPN 已连接但访问 OA 超时", "连 VPN 后 OA 系统超时", "VPN 拨号成功 OA 无法访问"]
    for i, subject in enumerate(symptoms, start=1):
        send(port, mail(subject, f"{subject}，其他网站正常。电话 1390000000{i}", sender=f"user{i}@example.com"))
        assert client.post(f"/tickets/{i}/assign", json={"group": "网络组"}).status_code == 200
        client.post(f"/tickets/{i}/status", json={"status": "in_progress"})
        send(port, mail(f"Re: [T0000000{i}] {subject}", "重连后仍然不行", sender=f"user{i}@example.com"))
        client.post(f"/tickets/{i}/status", json={"status": "resolved"})
        closed = client.post(
            f"/tickets/{i}/close",
            json={"resolution": "在 VPN 网关补充 OA 网段路由并重新下发策略", "root_cause": "VPN 网关路由表缺少 OA 网段",
                  "satisfaction": 5},
        )  # fmt: skip
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        kinds = [e["kind"] for e in client.get(f"/tickets/{i}").json()["events"]]
        assert kinds == ["created", "suggested", "assigned", "status", "note", "status", "closed"]
    kb.ticket_vectors.embed_closed()
    report = kb.distiller.distill("distiller", source="desk")
    assert [len(g.ids) for g in report.groups] == [4]
    draft = kb.store.get(report.groups[0].article_id or 0)
    assert draft.status == "draft" and "补充 OA 网段路由" in draft.body and "VPN 网关路由表缺少 OA 网段" in draft.body
    assert "1390000000" not in draft.body and "@example.com" not in draft.body
    suggestion = client.post(
        "/suggest", json={"title": "VPN 连上 OA 打不开", "description": "", "service": "日常服务"}
    ).json()
    assert suggestion["assignment"]["group"] == "网络组"
    assert suggestion["similar_tickets"][0]["resolution"].startswith("在 VPN 网关补充")


def test_same_message_id_twice_answers_250_and_makes_one_ticket(
    smtp: tuple[KnowledgeBase, int], client: TestClient
) -> None:
    kb, port = smtp
    message = mail("共享盘无法访问", "S 盘打不开。", Message_ID="<dup@example.com>")
    send(port, message)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as server:
        refused = server.sendmail("wang.qiang@example.com", ["helpdesk@example.com"], message.as_bytes())
    assert refused == {}  # accepted (250) again
    for again in (message, mail("别的邮件", "新问题", Message_ID="<new@example.com>")):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as server:  # one answer for both: no id, no oracle
            server.ehlo()
            server.mail("wang.qiang@example.com")
            server.rcpt("helpdesk@example.com")
            assert server.data(again.as_bytes()) == (250, b"OK")
    reply = mail("Re: 共享盘", "补充信息", In_Reply_To="<dup@example.com>", Message_ID="<dup-2@example.com>")
    send(port, reply)
    send(port, reply)
    assert client.get("/tickets/3").status_code == 404  # ticket 2 is the new mail's
    assert [e.kind for e in kb.desk.events(1)] == ["created", "suggested", "note"]


def _closed(client: TestClient, ticket_id: int) -> None:
    for status in ("in_progress", "resolved"):
        client.post(f"/tickets/{ticket_id}/assign", json={"group": "桌面组"})
        client.post(f"/tickets/{ticket_id}/status", json={"status": status})
    closed = client.post(f"/tickets/{ticket_id}/close", json={"resolution": "重新映射", "root_cause": "凭据过期"})
    assert closed.status_code == 200, closed.text


def test_reply_to_a_closed_ticket_reopens_it_or_opens_a_linked_follow_up(
    smtp: tuple[KnowledgeBase, int], client: TestClient
) -> None:
    kb, port = smtp
    send(port, mail("共享盘无法访问", "S 盘打不开。", Message_ID="<c1@example.com>"))
    _closed(client, 1)
    send(port, mail("Re: 共享盘无法访问", "又打不开了。", In_Reply_To="<c1@example.com>", Message_ID="<c2@x>"))
    reopened = kb.desk.get(1)
    assert reopened.status == "in_progress" and reopened.closed_at is None and "又打不开了" in reopened.work_notes
    assert kb.desk.events(1)[-1].kind == "reopened"
    _closed(client, 1)
    kb.tickets.reopen_within = dt.timedelta(0)  # KB_REOPEN_WITHIN_DAYS=0: every reply to a closed ticket follows up
    send(port, mail("Re: [T00000001] 共享盘", "第三次打不开。", Message_ID="<c3@x>"))
    assert kb.desk.get(1).status == "closed"
    follow = kb.desk.get(2)
    assert (follow.status, follow.channel, follow.requester) == ("new", "email", "wang.qiang@example.com")
    assert follow.title.startswith("跟进 T00000001") and "第三次打不开" in follow.description
    assert kb.desk.events(2)[-1].data == {"of": 1, "number": "T00000001"}
    assert kb.desk.events(1)[-1].data == {"by": 2, "number": "T00000002"}


def test_one_text_limit_for_every_channel(smtp: tuple[KnowledgeBase, int], client: TestClient) -> None:
    kb, port = smtp
    limit = kb.settings.intake_max_text_chars
    with pytest.raises(smtplib.SMTPDataError) as too_big:
        send(port, mail("很长的邮件", "长" * (limit + 1)))
    assert too_big.value.smtp_code == 552
    im = post_im(client, onebot(900, "长" * (limit + 1)))
    assert im.status_code == 413 and im.json()["error"] == "payload_too_large"
    web = client.post("/tickets", json={"title": "很长", "description": "长" * (limit + 1), "service": "日常服务"})
    assert web.status_code in (413, 422) and "error" in web.json()
    assert client.get("/tickets/1").status_code == 404
    send(port, mail("刚好", "长" * (limit - 10)))
    assert kb.desk.get(1).title == "刚好"


def test_im_message_delivered_twice_makes_one_ticket(client: TestClient) -> None:
    first = post_im(client, onebot(700, "打印机脱机"))
    again = post_im(client, onebot(700, "打印机脱机"))
    assert first.status_code == again.status_code == 200
    assert again.json() == {"reply": "该消息已受理，工单号 T00000001。"}
    assert client.get("/tickets/2").status_code == 404
