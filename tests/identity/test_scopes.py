"""Who sees which ticket and which article (访问控制 7.1.4.2, 有限制的共享): a requester sees only their own
tickets, an agent the tickets of their groups, restricted articles reach only their roles or groups, and whatever a
caller may not see answers 404 exactly like what does not exist. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kb.articles.content import parse_markdown
from kb.desk.workflow import NewTicket
from kb.identity.permissions import GRANTS
from kb.identity.permissions import Permission as P
from kb.identity.scopes import Principal, article_visible, ticket_clause, ticket_visible
from kb.ingest.tickets import import_tickets
from kb.models import Ticket
from tests.helpers import EXPORT, NO_LICENSES, anonymous, create, kb_of, login, onebot, post_im, search_ids, sysadmin

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"
RDP = {"title": "远程桌面连不上", "description": "提示没有可用的远程桌面授权服务器", "service": "日常服务"}


def as_user(client: TestClient, name: str, roles: list[str], groups: tuple[str, ...] = ()) -> TestClient:
    """A second client of the same app logged in as a new user ``name``."""
    kb_of(client).accounts.create(name, roles, "tests", groups=groups, password=GOOD, must_change=False)
    other = anonymous(client)
    login(other, name, GOOD)
    return other


def same_404(missing: Any, hidden: Any, ident: int, missing_id: int) -> None:
    """``hidden`` (an id the caller may not see) answers exactly as ``missing`` (an id that does not exist)."""
    assert missing.status_code == hidden.status_code == 404
    one, two = missing.json(), hidden.json()
    one.pop("request_id", None), two.pop("request_id", None)
    assert two == {k: (v.replace(str(missing_id), str(ident)) if isinstance(v, str) else v) for k, v in one.items()}


def test_requester_sees_only_own_tickets(client: TestClient) -> None:
    li = as_user(client, "li.si", ["requester"])
    wang = as_user(client, "wang.wu", ["requester"])
    made = li.post("/tickets", json=RDP | {"requester": "someone.else"})
    assert made.status_code == 201, made.text
    ticket = made.json()["ticket"]
    assert ticket["requester"] == "li.si"  # a requester asks for themself
    assert made.json()["suggestions"]["similar_tickets"] == []  # other people's tickets are not shown
    assert li.get(f"/tickets/{ticket['id']}").status_code == 200
    same_404(wang.get("/tickets/424242"), wang.get(f"/tickets/{ticket['id']}"), ticket["id"], 424242)
    denied = wang.post(f"/tickets/{ticket['id']}/deflect", json={"article_id": 1})
    assert denied.status_code == 404
    assert kb_of(client).desk.get(ticket["id"]).status == "new"  # nothing changed


def test_agent_sees_tickets_of_their_groups(client: TestClient) -> None:
    kb = kb_of(client)
    desk = as_user(client, "zhao.liu", ["agent"], ("桌面组",))
    ids = {}
    for group in ("桌面组", "网络组", None):
        made = client.post("/tickets", json=RDP).json()["ticket"]["id"]
        if group:
            assert client.post(f"/tickets/{made}/assign", json={"group": group}).status_code == 200
        ids[group] = made
    assert desk.get(f"/tickets/{ids['桌面组']}").status_code == 200
    with kb.database.session() as session:
        queued = session.get(Ticket, ids[None])
        assert queued is not None
        queued.resolver_group = None  # not yet triaged
    assert desk.get(f"/tickets/{ids[None]}").status_code == 200  # the intake queue
    same_404(desk.get("/tickets/424242"), desk.get(f"/tickets/{ids['网络组']}"), ids["网络组"], 424242)
    moved = desk.post(f"/tickets/{ids['网络组']}/assign", json={"group": "桌面组"})
    assert moved.status_code == 404 and kb.desk.get(ids["网络组"]).resolver_group == "网络组"
    assert client.get(f"/tickets/{ids['网络组']}").status_code == 200  # desk_lead: every ticket


def test_sql_clause_and_row_rule_agree(kb: Any) -> None:
    import_tickets(kb.database, EXPORT, "kb-zh")
    kb.tickets.take_in(NewTicket(**RDP, requester="li.si"), "li.si")
    principals = [
        Principal("li.si", ("requester",)),
        Principal("nobody", ("requester",)),
        Principal("a", ("agent",), ("网络组",)),
        Principal("b", ("engineer",), ("桌面组", "应用组")),
        Principal("c", ("desk_lead",)),
        Principal("d", ("kb_editor",)),
    ]
    with kb.database.session() as session:
        tickets = list(session.scalars(select(Ticket)))
        assert len({t.resolver_group for t in tickets}) > 2
        for principal in principals:
            by_sql = set(session.scalars(select(Ticket.id).where(ticket_clause(principal))))
            by_row = {t.id for t in tickets if ticket_visible(principal, t)}
            assert by_sql == by_row, principal
        counts = [len(set(session.scalars(select(Ticket.id).where(ticket_clause(p))))) for p in principals]
    assert counts[0] == 1 and counts[1] == 0 and 0 < counts[2] < counts[4] == len(tickets) and counts[5] == 0


def test_article_visibility_rule() -> None:
    requester, agent = Principal("r", ("requester",)), Principal("a", ("agent",), ("网络组",))
    editor = Principal("e", ("kb_editor",))
    assert article_visible(requester, "public") and not article_visible(requester, "internal")
    assert article_visible(agent, "internal") and not article_visible(agent, "restricted", ["secadmin", "安全组"])
    assert article_visible(agent, "restricted", ["网络组"]) and article_visible(agent, "restricted", ["agent"])
    assert article_visible(editor, "restricted", []) and article_visible(None, "restricted", [])


RESTRICTED = """---
title: 核心交换机应急口令与带外管理
visibility: restricted
restricted_to: [网络组]
---
# 核心交换机应急口令与带外管理

远程桌面授权服务器故障时，网络组通过带外管理口登录核心交换机处理。
"""


def test_restricted_article_never_reaches_other_callers(client: TestClient) -> None:
    kb = kb_of(client)
    secret = create(client, RESTRICTED)
    assert (secret["visibility"], secret["restricted_to"]) == ("restricted", ["网络组"])
    internal = create(client, NO_LICENSES)
    public = create(client, "# 远程桌面授权服务器公告\n\n远程桌面授权服务器今晚维护。", visibility="public")
    net = as_user(client, "net.one", ["agent"], ("网络组",))
    desk = as_user(client, "desk.one", ["agent"], ("桌面组",))
    requester = as_user(client, "req.one", ["requester"])
    query = "远程桌面授权服务器"
    assert secret["id"] in search_ids(net, query)
    assert secret["id"] not in search_ids(desk, query) and internal["id"] in search_ids(desk, query)
    assert search_ids(requester, query) == [public["id"]]
    body = desk.get("/search", params={"q": query, "explain": True}).json()
    assert "核心交换机" not in str(body) and "带外" not in str(body)  # results, snippets, why, counts
    same_404(desk.get("/articles/424242"), desk.get(f"/articles/{secret['id']}"), secret["id"], 424242)
    for path in ("/markdown", "/versions", "/feedback"):
        assert desk.get(f"/articles/{secret['id']}{path}").status_code == 404, path
    assert desk.get("/search/why", params={"q": query, "article_id": secret["id"]}).status_code == 404
    assert requester.get(f"/articles/{internal['id']}").status_code == 404
    listed = [a["id"] for a in desk.get("/articles").json()["items"]]
    assert secret["id"] not in listed and internal["id"] in listed
    suggested = desk.post("/suggest", json=RDP).json()["articles"]
    assert secret["id"] not in [a["article_id"] for a in suggested] and suggested
    assert secret["id"] in [a["article_id"] for a in net.post("/suggest", json=RDP).json()["articles"]]
    reply = post_im(client, onebot(901, "远程桌面授权服务器连不上")).json()["reply"]
    assert f"#{public['id']}" in reply and "核心交换机" not in reply and f"#{internal['id']}" not in reply
    assert kb.store.get(secret["id"]).restricted_to == ["网络组"]
    exported = net.get(f"/articles/{secret['id']}/markdown")
    assert exported.status_code == 200 and "restricted_to:\n- 网络组" in exported.text  # front matter round trip
    assert [r.actor for r in kb.audit.query(event="article.export")[1]] == ["net.one"]


def test_phone_and_id_numbers_are_masked_in_exports_and_for_callers_who_do_not_need_them(client: TestClient) -> None:
    from kb.identity.masking import mask_personal

    assert mask_personal("手机13812345678 身份证110105199003078876") == "手机138****5678 身份证110105********8876"
    assert mask_personal("错误 0x80070005 版本 3.6.3") == "错误 0x80070005 版本 3.6.3"
    kb = kb_of(client)
    leaky = RDP | {"title": "13812345678 远程桌面连不上", "description": "身份证110105199003078876 需要开通"}
    made = [client.post("/tickets", json=leaky).json()["ticket"] for _ in range(3)]  # a frequent problem
    assert "13812345678" in client.get(f"/tickets/{made[0]['id']}").text  # the desk calls the requester back
    report = client.get("/analysis", params={"start": "2000-01-01", "end": "2100-01-01", "format": "csv"})
    assert report.status_code == 200 and "13812345678" not in report.text
    assert "[手机号] 远程桌面连不上" in report.text  # example titles are redacted (kb.desk.analysis), then masked
    as_json = client.get("/analysis", params={"start": "2000-01-01", "end": "2100-01-01"})
    assert "13812345678" not in as_json.text and "110105199003078876" not in as_json.text
    assert {r.event for r in kb.audit.query(event="analysis.export")[1]} == {"analysis.export"}


def test_group_membership_changes_what_an_agent_sees(client: TestClient) -> None:
    kb = kb_of(client)
    agent = as_user(client, "zhou.qi", ["agent"], ("桌面组",))
    made = client.post("/tickets", json=RDP).json()["ticket"]["id"]
    assert client.post(f"/tickets/{made}/assign", json={"group": "网络组"}).status_code == 200
    assert agent.get(f"/tickets/{made}").status_code == 404
    admin = sysadmin(client)
    moved = admin.put("/users/zhou.qi/groups", json={"groups": ["网络组"]})
    assert moved.status_code == 200 and moved.json()["user"]["groups"] == ["网络组"]
    assert agent.get(f"/tickets/{made}").status_code == 401  # the change ended the agent's sessions
    login(agent, "zhou.qi", GOOD)
    assert agent.get(f"/tickets/{made}").status_code == 200  # the new groups apply to the new session
    assert admin.put("/users/nobody/groups", json={"groups": []}).status_code == 404
    assert agent.put("/users/zhou.qi/groups", json={"groups": ["应用组"]}).status_code == 403
    assert [r.reason for r in kb.audit.query(event="user.groups")[1]] == ["桌面组 -> 网络组; 1 sessions ended"]


def test_versions_saved_while_restricted_stay_restricted_after_the_article_opens_up(client: TestClient) -> None:
    """Found by the outside tester of session 6: an article made public kept handing out, through its versions
    and diffs, the text it had while restricted."""
    secret = create(client, RESTRICTED)
    opened = "---\ntitle: 带外管理公告\nvisibility: internal\n---\n# 带外管理公告\n\n网络组今晚维护带外管理口。\n"
    changed = client.put(
        f"/articles/{secret['id']}", json={"body": opened, "visibility": "internal", "restricted_to": []}
    )
    assert changed.status_code == 200 and changed.json()["article"]["visibility"] == "internal", changed.text
    desk = as_user(client, "desk.two", ["agent"], ("桌面组",))
    aid = secret["id"]
    assert desk.get(f"/articles/{aid}").status_code == 200  # the article itself is internal now
    assert [v["version"] for v in desk.get(f"/articles/{aid}/versions").json()] == [2]
    assert desk.get(f"/articles/{aid}/versions/1").status_code == 404  # as a version that does not exist
    assert desk.get(f"/articles/{aid}/diff", params={"from": 1, "to": 2}).status_code == 404
    assert desk.get(f"/articles/{aid}/versions/2").status_code == 200
    net = as_user(client, "net.two", ["agent"], ("网络组",))  # who could read version 1 still can
    assert "带外管理口登录核心交换机" in net.get(f"/articles/{aid}/versions/1").json()["body"]
    assert net.get(f"/articles/{aid}/diff", params={"from": 1, "to": 2}).status_code == 200


def test_only_editors_read_the_feedback_of_others(client: TestClient) -> None:
    """Found by the outside tester of session 6: any reader got every vote with its author, query and comment."""
    article = create(client, "# 打印机脱机\n\n重启打印服务。", visibility="public")
    aid = article["id"]
    lead = as_user(client, "lead.one", ["desk_lead"])
    assert (
        lead.post(f"/articles/{aid}/feedback", json={"helpful": False, "comment": "13812345678 回电"}).status_code
        == 201
    )
    requester = as_user(client, "req.two", ["requester"])
    assert requester.post(f"/articles/{aid}/feedback", json={"helpful": True}).status_code == 201
    assert [f["actor"] for f in requester.get(f"/articles/{aid}/feedback").json()] == ["req.two"]
    assert sorted(f["actor"] for f in client.get(f"/articles/{aid}/feedback").json()) == ["lead.one", "req.two"]


def test_explain_counts_only_candidates_the_caller_may_see(client: TestClient) -> None:
    """Found by the outside tester of session 6: ``explain.candidates`` counted over the whole index, so it told
    a caller whether a word occurs in text hidden from them."""
    create(client, RESTRICTED.replace("带外管理口", "带外管理口 斑马狐狸密语"))
    desk = as_user(client, "desk.three", ["agent"], ("桌面组",))
    net = as_user(client, "net.three", ["agent"], ("网络组",))
    hidden = desk.get("/search", params={"q": "斑马狐狸密语", "explain": True, "mode": "bm25"}).json()
    assert hidden["results"] == [] and hidden["explain"]["candidates"].get("bm25", 0) == 0
    seen = net.get("/search", params={"q": "斑马狐狸密语", "explain": True, "mode": "bm25"}).json()
    assert seen["results"] and seen["explain"]["candidates"]["bm25"] >= 1


def test_why_and_query_terms_say_nothing_of_hidden_articles(client: TestClient) -> None:
    """Found by the outside tester of session 6: ``/search/why`` gave each term's idf over the whole index and
    ranked among every article, and the terms searched for an identifier depended on whether any article (hidden
    ones too) held it: each told a caller whether a word occurs in text hidden from them."""
    create(client, RESTRICTED.replace("带外管理口", "带外管理口 ZX-7731-QF 斑马狐狸密语"))
    public = create(client, "# 交换机维护公告\n\n交换机 ZX 型号今晚维护。", visibility="public")
    desk = as_user(client, "desk.four", ["agent"], ("桌面组",))
    net = as_user(client, "net.four", ["agent"], ("网络组",))
    editor = as_user(client, "editor.four", ["kb_editor"])

    def why(who: TestClient, q: str) -> dict[str, Any]:
        answer = who.get("/search/why", params={"q": q, "article_id": public["id"]})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    assert {t["idf"] for t in why(desk, "斑马狐狸密语 交换机")["terms"]} == {None}
    assert {t["idf"] for t in why(net, "斑马狐狸密语 交换机")["terms"]} == {None}  # net sees it, not everything
    assert all(t["idf"] > 0 for t in why(editor, "斑马狐狸密语 交换机")["terms"])
    hidden_rank = why(desk, "交换机 维护 带外管理口")["bm25"]["rank"]
    assert hidden_rank == 1  # the restricted article, a better match, is not counted before it
    assert why(net, "交换机 维护 带外管理口")["bm25"]["rank"] == 2

    def searched(who: TestClient) -> list[str]:
        body = who.get("/search", params={"q": "ZX-7731-QF", "explain": True, "mode": "bm25"}).json()
        return body["explain"]["terms"]  # type: ignore[no-any-return]

    whole = "zx-7731-qf"
    assert whole in searched(net) and "zx" not in searched(net)  # the index holds it: parts dropped
    assert searched(desk) == searched(as_user(client, "desk.five", ["agent"], ("桌面组",)))
    assert "zx" in searched(desk)  # as if the hidden article did not exist: its parts stand in


def test_tickets_an_article_resolved_are_shown_only_to_who_may_see_them(client: TestClient) -> None:
    """Found by the outside tester of session 6: the ``ticket`` of a usage event was free text shown on the article
    to every reader (another requester's ticket, a phone number)."""
    aid = create(client, "# 远程桌面授权\n\n授权服务器重启后恢复。", visibility="public")["id"]
    requester = as_user(client, "req.six", ["requester"])
    other = as_user(client, "req.seven", ["requester"])
    opened = requester.post("/tickets", json=RDP).json()["ticket"]
    own, theirs = opened["external_id"], other.post("/tickets", json=RDP).json()["ticket"]["external_id"]
    # a resolution is the desk's to record (session 8): a requester gets 403 for any ticket, saying nothing of it
    assert requester.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": theirs}).status_code == 403
    assert requester.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": own}).status_code == 403
    # an agent names only a ticket they may see: another group's answers 404 like a missing one
    assert client.post(f"/tickets/{opened['id']}/assign", json={"group": "桌面组"}).status_code == 200
    net = as_user(client, "net.six", ["agent"], ("网络组",))
    hidden = net.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": own})
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    for number in (own, theirs):
        assert client.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": number}).status_code == 201
    assert requester.get(f"/articles/{aid}").json()["stats"]["tickets"] == [own]
    assert other.get(f"/articles/{aid}").json()["stats"]["tickets"] == [theirs]
    assert set(client.get(f"/articles/{aid}").json()["stats"]["tickets"]) == {own, theirs}  # desk_lead: all
    # the count is of the same tickets: another requester's closures are not a requester's to count (the guide:
    # data a caller may not see never reaches them, counts included)
    assert requester.get(f"/articles/{aid}").json()["stats"]["resolved"] == 1
    for who in (other, net):
        stats = who.get(f"/articles/{aid}").json()["stats"]
        assert stats["resolved"] == len(stats["tickets"])
    assert client.get(f"/articles/{aid}").json()["stats"]["resolved"] == 2


def test_confidence_says_nothing_of_words_in_hidden_articles(client: TestClient) -> None:
    """Found by session 7's outside tester: the top hit's coverage weighed the query's terms by their idf over the
    whole index, so a word held only in hidden text lowered it and flipped ``low_confidence`` (in results, ticket
    suggestions and the IM reply): a caller could test whether a word occurs where they may not read."""
    create(client, RESTRICTED.replace("带外管理口", "带外管理口 斑马石英密钥"))
    create(client, "# 远程桌面授权服务器公告\n\n远程桌面授权服务器今晚维护。", visibility="public")
    requester = as_user(client, "req.eight", ["requester"])
    net = as_user(client, "net.eight", ["agent"], ("网络组",))

    def signals(who: TestClient, q: str) -> tuple[bool, float]:
        body = who.get("/search", params={"q": q, "explain": True, "mode": "bm25"}).json()
        return body["low_confidence"], body["explain"]["confidence"]["coverage"]

    hidden_word, no_word = "远程桌面授权服务器 斑马石英密钥", "远程桌面授权服务器 琥珀鹦鹉暗号"
    assert signals(requester, hidden_word) == signals(requester, no_word)
    top = net.get("/search", params={"q": hidden_word, "mode": "bm25"}).json()["results"][0]
    assert "斑马石英密钥" in top["snippet"] or top["title"].startswith("核心交换机")  # net may read it


def test_a_successor_the_caller_may_not_see_is_not_named(client: TestClient) -> None:
    """Found by session 7's outside tester: a retired public article named its restricted successor's id in
    ``superseded_by`` and in the ``Link`` header."""
    secret = create(client, RESTRICTED)
    old = create(client, "# 交换机旧流程\n\n旧的处理流程。", visibility="public")
    retired = client.post(f"/articles/{old['id']}/status", json={"status": "retired", "superseded_by": secret["id"]})
    assert retired.status_code == 200, retired.text
    requester = as_user(client, "req.nine", ["requester"])
    seen = requester.get(f"/articles/{old['id']}", params={"count_view": False})
    assert seen.status_code == 200 and seen.json()["superseded_by"] is None and "link" not in seen.headers
    net = as_user(client, "net.nine", ["agent"], ("网络组",))
    named = net.get(f"/articles/{old['id']}", params={"count_view": False})
    assert named.json()["superseded_by"] == secret["id"] and str(secret["id"]) in named.headers["link"]


def test_writes_to_an_article_the_caller_may_not_read_answer_404_and_change_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every route that writes an article named by id checks, as reads do, that the caller may read it. Today only
    ``kb_editor`` writes, and it sees every article; here it is given write without ``article.all`` (a role a
    deployment could define), and the restricted article must stay as it was on every write path."""
    kb = kb_of(client)
    secret = create(client, RESTRICTED)
    shown = create(client, NO_LICENSES)  # one the outsider may read
    hidden_review = RESTRICTED.replace("title: 核心", "kind: post_incident_review\ntitle: 核心")
    review = kb.writer.create(parse_markdown(hidden_review), "t")
    assert review.article is not None and review.article.kind == "post_incident_review"
    meta = {"proposal": "update", "target_article": secret["id"]}
    proposed = parse_markdown("# 更新建议：带外管理\n\n改用新口令。\n", status="draft", meta=meta)
    proposal = kb.writer.create(proposed, "t")
    assert proposal.article is not None
    monkeypatch.setitem(GRANTS, "kb_editor", GRANTS["kb_editor"] - {P.ARTICLE_ALL})
    outsider = as_user(client, "edit.one", ["kb_editor"], ("桌面组",))
    ident = secret["id"]
    answers = {
        "PUT": outsider.put(f"/articles/{ident}", json={"body": "# 覆盖\n\n被改写的正文。"}),
        "restore": outsider.post(f"/articles/{ident}/versions/1/restore"),
        "accept a proposal for it": outsider.post(f"/articles/{proposal.article.id}/proposal/accept"),
        "reject a proposal for it": outsider.post(f"/articles/{proposal.article.id}/proposal/reject"),
        "status": outsider.post(f"/articles/{ident}/status", json={"status": "retired"}),
        "accept": outsider.post(f"/articles/{ident}/proposal/accept"),
        "reject": outsider.post(f"/articles/{ident}/proposal/reject"),
        "review": outsider.get(f"/reviews/{review.article.id}"),
        "known-error": outsider.post(f"/reviews/{review.article.id}/known-error"),
        "DELETE": outsider.delete(f"/articles/{ident}"),
    }
    missing = outsider.put("/articles/424242", json={"body": "# 覆盖\n\n被改写的正文。"})
    retired = {"status": "retired"}
    hidden_successor = outsider.post(f"/articles/{shown['id']}/status", json=retired | {"superseded_by": ident})
    no_successor = outsider.post(f"/articles/{shown['id']}/status", json=retired | {"superseded_by": 424242})
    assert hidden_successor.status_code == no_successor.status_code == 422
    assert hidden_successor.json()["detail"] == no_successor.json()["detail"].replace("424242", str(ident))
    assert kb.store.get(shown["id"]).status == shown["status"]  # not retired
    for name, answer in answers.items():
        assert answer.status_code == 404, (name, answer.text)
        assert "核心交换机" not in answer.text and "带外" not in answer.text, name
    same_404(missing, answers["PUT"], ident, 424242)
    stored = kb.store.get(ident)
    assert (stored.title, stored.status, stored.version) == ("核心交换机应急口令与带外管理", secret["status"], 1)
    assert kb.store.count() == 4  # no known-error article was made from the hidden review
    assert kb.store.get(proposal.article.id).status == "draft"  # the proposal is still to decide


def test_a_proposal_takes_its_targets_visibility_and_one_about_a_hidden_article_is_refused_as_missing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /articles``, ``PUT`` and ``POST /reviews`` with ``proposal: update`` (session 14's outside tester: a
    proposal about a restricted article was stored internal and found by everyone). A caller who may read the
    target gets a proposal with the target's visibility; one who may not is answered as for a missing target."""
    kb = kb_of(client)
    secret = create(client, RESTRICTED)
    shown = create(client, NO_LICENSES)

    def proposal(target: int) -> str:
        return f"---\nproposal: update\ntarget_article: {target}\nvisibility: public\n---\n# 更新建议\n\n新步骤。\n"

    made = client.post("/articles", json={"body": proposal(secret["id"])})
    assert made.status_code == 201, made.text
    assert (made.json()["article"]["visibility"], made.json()["article"]["restricted_to"]) == ("restricted", ["网络组"])
    assert made.json()["article"]["status"] == "published"
    assert made.json()["article"]["id"] not in search_ids(as_user(client, "desk.two", ["agent"], ("桌面组",)), "新步骤")
    monkeypatch.setitem(GRANTS, "kb_editor", GRANTS["kb_editor"] - {P.ARTICLE_ALL})
    outsider = as_user(client, "edit.two", ["kb_editor"], ("桌面组",))
    count = kb.store.count()
    hidden = outsider.post("/articles", json={"body": proposal(secret["id"])})
    missing = outsider.post("/articles", json={"body": proposal(424242)})
    put = outsider.put(f"/articles/{shown['id']}", json={"body": proposal(secret["id"])})
    review = outsider.post("/reviews", json={"body": proposal(secret["id"])})
    assert hidden.status_code == missing.status_code == put.status_code == review.status_code == 422, hidden.text
    assert hidden.json()["detail"] == missing.json()["detail"].replace("424242", str(secret["id"]))
    assert "网络组" not in hidden.text + put.text + review.text
    assert kb.store.count() == count and kb.store.get(shown["id"]).version == shown["version"]  # nothing stored
    own = outsider.post("/articles", json={"body": proposal(shown["id"])})
    fine_review = outsider.post("/reviews", json={"body": proposal(shown["id"])})
    assert own.status_code == 201 and own.json()["article"]["visibility"] == shown["visibility"]
    assert fine_review.status_code == 201, fine_review.text  # the same review about a readable article is stored
