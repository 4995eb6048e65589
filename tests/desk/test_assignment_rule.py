"""Assignment to groups and people the desk knows (kb.desk.resolver_groups), SQLite and PostgreSQL: a ticket goes to
a catalog group, a group an enabled account belongs to, or a group of the imported history; the person must be an
enabled account that works tickets and a member of that group. Anything else is 422 with its own code and changes
nothing (the ticket, its events and the audit trail stay as they were)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from kb.desk.workflow import NewTicket
from kb.errors import UnknownGroupError
from kb.ingest.tickets import import_tickets
from kb.service import KnowledgeBase
from tests.helpers import EXPORT, kb_of

TICKET = {"title": "打印机脱机", "description": "三楼打印机脱机", "service": "日常服务"}
GOOD = "Lan-Zhang-42"


def _state(client: TestClient, ticket_id: int) -> tuple[Any, ...]:
    kb = kb_of(client)
    ticket = kb.desk.get(ticket_id)
    _, audit = kb.audit.query(event="ticket.assign")
    return (
        ticket.status,
        ticket.resolver_group,
        ticket.assignee,
        ticket.tier,
        len(kb.desk.events(ticket_id)),
        len(audit),
    )


def _refused(client: TestClient, path: str, body: dict[str, Any], code: str) -> None:
    ticket_id = int(path.split("/")[2])
    before = _state(client, ticket_id)
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == code and answer.json()["detail"]
    assert _state(client, ticket_id) == before  # nothing changed


def test_unknown_groups_and_assignees_are_refused_and_change_nothing(client: TestClient) -> None:
    kb = kb_of(client)
    kb.accounts.create("li.na", ["agent"], "tests", groups=["运维组"], password=GOOD, must_change=False)
    kb.accounts.create("wang.wu", ["agent"], "tests", groups=["运维组"], password=GOOD, must_change=False)
    kb.accounts.create("zhao.liu", ["requester"], "tests", groups=["运维组"], password=GOOD, must_change=False)
    kb.accounts.set_active("wang.wu", False)
    tid = client.post("/tickets", json=TICKET).json()["ticket"]["id"]
    assign = f"/tickets/{tid}/assign"
    _refused(client, assign, {"group": "没有这个组"}, "unknown_group")
    _refused(client, assign, {"group": "运维組"}, "unknown_group")  # a look-alike (traditional 組)
    _refused(client, assign, {"group": "运维组", "assignee": "nobody"}, "unknown_assignee")
    _refused(client, assign, {"group": "运维组", "assignee": "wang.wu"}, "unknown_assignee")  # disabled
    _refused(client, assign, {"group": "运维组", "assignee": "zhao.liu"}, "unknown_assignee")  # does not work tickets
    _refused(client, assign, {"group": "数据组", "assignee": "li.na"}, "assignee_not_in_group")
    _refused(client, f"/tickets/{tid}/escalate", {"reason": "需要二线", "group": "随便写的组"}, "unknown_group")
    assert kb.desk.get(tid).status == "new"

    done = client.post(assign, json={"group": " 运维组 ", "assignee": "LI.NA"})  # catalog group, a member
    assert done.status_code == 200, done.text
    assert (done.json()["resolver_group"], done.json()["assignee"]) == ("运维组", "li.na")
    assert client.post(assign, json={"group": "桌面组"}).status_code == 200  # a group an account belongs to
    escalated = client.post(f"/tickets/{tid}/escalate", json={"reason": "需要二线", "group": "数据组"})
    assert escalated.status_code == 200 and escalated.json()["ticket"]["resolver_group"] == "数据组"


def test_groups_of_the_imported_history_stay_assignable(kb: KnowledgeBase) -> None:
    """The assignment suggestion votes among the groups of similar past tickets, and a replay assigns to them."""
    made = kb.tickets.take_in(NewTicket(**TICKET), "tests").ticket.id
    with pytest.raises(UnknownGroupError, match="网络组"):  # no catalog group, no account in it, no history yet
        kb.desk.assign(made, "网络组", "tests")
    assert kb.desk.get(made).status == "new"
    import_tickets(kb.database, EXPORT, "kb-zh")  # its tickets were handled by 网络组 and 桌面组
    assert kb.desk.assign(made, "网络组", "tests").resolver_group == "网络组"
    with pytest.raises(UnknownGroupError):
        kb.desk.assign(made, "网络组X", "tests")
