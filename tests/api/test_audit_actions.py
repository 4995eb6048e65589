"""Article, ticket and import actions over HTTP are audited in their own transactions (安全审计 7.1.4.3 a)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import EXPORT, NO_LICENSES, SYSADMIN_USER, TEST_USER, anonymous, create, kb_of, new_user, sysadmin

pytestmark = pytest.mark.security


def _audited(client: TestClient, prefix: str) -> list[tuple[str, str, str, str]]:
    _, rows = kb_of(client).audit.query(limit=1000)
    return [(r.event, r.actor, r.object, r.source_ip) for r in reversed(rows) if r.event.startswith(prefix)]


def test_article_lifecycle_and_deletion_are_audited(client: TestClient) -> None:
    article = create(client, NO_LICENSES, status="draft")
    aid = article["id"]
    for status in ("in_review", "published", "retired"):
        response = client.post(f"/articles/{aid}/status", json={"status": status})
        assert response.status_code == 200, response.text
    assert client.delete(f"/articles/{aid}").status_code == 200
    title = article["title"]
    assert _audited(client, "article.") == [
        ("article.create", TEST_USER, f"article {aid} {title}", "testclient"),
        ("article.status", TEST_USER, f"article {aid} {title}", "testclient"),
        ("article.publish", TEST_USER, f"article {aid} {title}", "testclient"),
        ("article.retire", TEST_USER, f"article {aid} {title}", "testclient"),
        ("article.delete", TEST_USER, f"article {aid} {title}", "testclient"),
    ]
    assert kb_of(client).audit.verify().ok


def test_a_version_restore_is_audited_with_the_new_version(client: TestClient) -> None:
    """The restore's audit row is written in the transaction that makes the old version current (kb.db.AUDIT_ACTIONS);
    a restore that changes nothing (the version is already current) leaves no row."""
    article = create(client, NO_LICENSES)
    aid = article["id"]
    changed = client.put(f"/articles/{aid}", json={"body": NO_LICENSES + "\n补充：重启远程桌面授权服务。\n"})
    assert changed.status_code == 200, changed.text
    assert client.post(f"/articles/{aid}/versions/1/restore").status_code == 200
    assert _audited(client, "article.restore") == [("article.restore", TEST_USER, f"article {aid}", "testclient")]
    assert client.post(f"/articles/{aid}/versions/3/restore").status_code == 200  # already current: no change
    assert len(_audited(client, "article.restore")) == 1
    assert kb_of(client).audit.verify().ok


def test_an_article_created_published_is_audited_as_published(client: TestClient) -> None:
    made = create(client, NO_LICENSES, status="published")
    aid, title = made["id"], made["title"]
    assert _audited(client, "article.publish") == [
        ("article.publish", TEST_USER, f"article {aid} {title}", "testclient")
    ]
    assert isinstance(aid, int) and kb_of(client).store.get(aid).reviewer == TEST_USER


def test_ticket_work_and_imports_are_audited(client: TestClient) -> None:
    ticket = client.post(
        "/tickets", json={"title": "打印机卡纸", "description": "三楼打印机卡纸", "service": "日常服务"}
    )
    assert ticket.status_code == 201, ticket.text
    tid = ticket.json()["ticket"]["id"]
    assert client.post(f"/tickets/{tid}/assign", json={"group": "桌面组"}).status_code == 200
    assert client.post(f"/tickets/{tid}/escalate", json={"reason": "需要现场"}).status_code == 200
    assert client.post(f"/tickets/{tid}/notes", json={"text": "已联系用户"}).status_code == 200
    for status in ("in_progress", "resolved"):
        assert client.post(f"/tickets/{tid}/status", json={"status": status}).status_code == 200
    closed = client.post(f"/tickets/{tid}/close", json={"resolution": "清理卡纸", "root_cause": "纸张受潮"})
    assert closed.status_code == 200, closed.text
    assert [e[:3] for e in _audited(client, "ticket.")] == [
        ("ticket.create", TEST_USER, f"ticket {tid}"),
        ("ticket.assign", TEST_USER, f"ticket {tid}"),
        ("ticket.escalate", TEST_USER, f"ticket {tid}"),
        ("ticket.note", TEST_USER, f"ticket {tid}"),
        ("ticket.status", TEST_USER, f"ticket {tid}"),
        ("ticket.status", TEST_USER, f"ticket {tid}"),
        ("ticket.close", TEST_USER, f"ticket {tid}"),
    ]
    imported = sysadmin(client).post("/ingest/tickets", params={"mapping": "kb-zh"}, content=EXPORT.read_bytes())
    assert imported.status_code == 200, imported.text
    imports = [e for e in _audited(client, "ticket.import")]
    assert imports and all(actor == SYSADMIN_USER for _, actor, _, _ in imports)
    assert kb_of(client).audit.verify().ok


def test_an_article_put_and_a_restricted_article_are_audited_without_their_bodies(client: TestClient) -> None:
    """Found by session 7's outside tester: a PUT (even one opening an internal article to everyone) and the
    creation of a restricted article left no audit row."""
    kb = kb_of(client)
    secret = "机房门禁口令 4711-XYZ"
    made = client.post(
        "/articles",
        json={"body": NO_LICENSES + f"\n{secret}\n", "visibility": "restricted", "restricted_to": ["网络组"]},
    )
    assert made.status_code == 201, made.text
    aid, title = made.json()["article"]["id"], made.json()["article"]["title"]
    opened = client.put(f"/articles/{aid}", json={"visibility": "public"})
    assert opened.status_code == 200, opened.text
    edited = client.put(f"/articles/{aid}", json={"body": NO_LICENSES + "\n补充：重启远程桌面授权服务。\n"})
    assert edited.status_code == 200, edited.text
    assert client.put(f"/articles/{aid}", json={"visibility": "public"}).status_code == 200  # no change: no row
    rows = [r for r in reversed(kb.audit.query(limit=100)[1]) if r.event in ("article.create", "article.update")]
    assert [(r.event, r.actor, r.object) for r in rows] == [
        ("article.create", TEST_USER, f"article {aid} {title}"),
        ("article.update", TEST_USER, f"article {aid} {title}"),
        ("article.update", TEST_USER, f"article {aid} {title}"),
    ]
    assert [r.reason for r in rows] == [
        "visibility=restricted restricted_to=网络组",
        "version 1 -> 2: visibility; visibility restricted -> public",
        "version 2 -> 3: body",
    ]
    everything = str([(r.object, r.reason) for r in kb.audit.query(limit=1000)[1]])
    assert secret not in everything and "4711" not in everything
    assert kb.audit.verify().ok


def test_a_deleted_articles_id_is_never_given_again(client: TestClient) -> None:
    """Found by session 8's outside tester: on SQLite a new article took the id of the newest one deleted, so the
    audit trail's ``article N`` (and a ticket's draft, a ``superseded_by``) named an unrelated article."""
    newest = create(client, NO_LICENSES)["id"]
    assert client.delete(f"/articles/{newest}").status_code == 200
    again = create(client, NO_LICENSES)["id"]
    assert again > newest
    assert client.get(f"/articles/{newest}").status_code == 404


def _rows(client: TestClient, *events: str) -> list[tuple[str, str, str, str]]:
    _, rows = kb_of(client).audit.query(limit=1000)
    return [(r.event, r.actor, r.object, r.reason) for r in reversed(rows) if r.event in events]


def test_synonyms_resolutions_ticket_intake_and_status_moves_are_audited(client: TestClient) -> None:
    """Found by session 9's outside tester: an editor's synonym groups (POST and DELETE /synonyms, which change
    every search), an agent's ``resolved`` use of an article (which feeds the desk's ranking vote), ticket creation
    (a person's and a service account's) and ticket status moves left no audit row. Each is now audited in the
    transaction of the change (kb.identity.observer), by who did it; and a deletion names who deleted, not who
    last edited."""
    kb = kb_of(client)
    editor, other_editor = new_user(client, "ed1", ["kb_editor"]), new_user(client, "ed2", ["kb_editor"])
    made = editor.post("/synonyms", json={"terms": ["鲸鲨", "whale-shark"]})
    assert made.status_code == 201, made.text
    gid = made.json()["id"]
    assert other_editor.delete(f"/synonyms/{gid}").status_code == 204
    assert other_editor.delete(f"/synonyms/{gid}").status_code == 404  # nothing deleted: no row
    assert _rows(client, "synonym.create", "synonym.delete") == [  # not the bundled list of the first start
        ("synonym.create", "ed1", "synonym 鲸鲨,whale-shark", ""),
        ("synonym.delete", "ed2", f"synonym {gid} 鲸鲨,whale-shark", ""),
    ]
    article = create(editor, NO_LICENSES, visibility="public", status="published")
    assert other_editor.delete(f"/articles/{article['id']}").status_code == 200
    assert [r[1] for r in _rows(client, "article.delete")] == ["ed2"]

    agent = new_user(client, "ag1", ["agent"], ("服务台", "桌面组"))
    ticket = agent.post(
        "/tickets", json={"title": "打印机卡纸", "description": "三楼打印机卡纸", "service": "日常服务"}
    )
    assert ticket.status_code == 201, ticket.text
    tid, number = ticket.json()["ticket"]["id"], ticket.json()["ticket"]["external_id"]
    assert agent.post(f"/tickets/{tid}/assign", json={"group": "桌面组"}).status_code == 200
    assert agent.post(f"/tickets/{tid}/status", json={"status": "in_progress"}).status_code == 200
    bot = sysadmin(client).post("/users/services", json={"name": "bot1", "scopes": ["ticket.create"]})
    service = anonymous(client)
    service.headers["Authorization"] = f"Bearer {bot.json()['token']}"
    by_bot = service.post("/tickets", json={"title": "邮箱满了", "description": "收不到邮件", "service": "日常服务"})
    assert by_bot.status_code == 201, by_bot.text
    assert _rows(client, "ticket.create", "ticket.status") == [
        ("ticket.create", "ag1", f"ticket {tid}", "web"),
        ("ticket.status", "ag1", f"ticket {tid}", "assigned -> in_progress"),
        ("ticket.create", "svc:bot1", f"ticket {by_bot.json()['ticket']['id']}", "api"),
    ]
    aid = create(client, NO_LICENSES, visibility="public", status="published")["id"]
    used = agent.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": number})
    assert used.status_code == 201, used.text
    assert agent.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": number}).status_code == 201
    assert _rows(client, "article.resolved") == [("article.resolved", "ag1", f"article {aid}", f"ticket {number}")]
    assert kb.audit.verify().ok
