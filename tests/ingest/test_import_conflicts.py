"""A re-import never overwrites a ticket the desk has worked, and a ticket number names one ticket (kb.ingest.tickets).

Both rules answer a conflict: the row is skipped, listed in the import report with its line, number and reason, and
audited as the importing user (session 9's outside tester, M7 and L8).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb.errors import InvalidInputError
from kb.ingest.tickets import import_tickets
from kb.models import Ticket
from tests.helpers import ROOT, SYSADMIN_USER, kb_of, sysadmin

pytestmark = pytest.mark.security

HEADER = ["工单号", "标题", "问题描述", "服务类型", "处理组", "状态", "报告人", "处理记录"]


def _csv(*rows: tuple[str, str, str]) -> bytes:
    """A kb-zh export of rows (number, status, work notes)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for number, status, notes in rows:
        writer.writerow([number, f"共享盘 {number} 打不开", "映射的共享盘提示拒绝访问", "日常服务", "桌面组", status,
                         "req2", notes])  # fmt: skip
    return out.getvalue().encode("utf-8")


def _import(client: TestClient, body: bytes) -> dict[str, object]:
    answer = sysadmin(client).post("/ingest/tickets", params={"mapping": "kb-zh", "format": "csv"}, content=body)
    assert answer.status_code == 200, answer.text
    report: dict[str, object] = answer.json()
    return report


def _audited(client: TestClient, event: str) -> list[tuple[str, str, str]]:
    _, rows = kb_of(client).audit.query(limit=1000)
    return [(r.actor, r.object, r.reason) for r in reversed(rows) if r.event == event]


def _ticket(client: TestClient, number: str, source: str = "kb-zh") -> Ticket:
    with kb_of(client).database.session() as session:
        found = session.query(Ticket).filter_by(source=source, external_id=number).one()
        session.expunge(found)
        return found


def test_a_reimport_never_overwrites_a_ticket_the_desk_has_worked(client: TestClient) -> None:
    """Found by session 9's outside tester: re-importing a changed row of ticket LIVE01 after the desk lead added a
    note and resolved it answered ``updated: 1``, moved it back to 处理中 and replaced its work notes; the audit
    trail said only ``ticket.import kb-zh 1 rows`` (M7)."""
    first = _import(client, _csv(("LIVE01", "处理中", "旧系统记录A"), ("LIVE02", "处理中", "旧系统记录A")))
    assert first["created"] == 2
    worked = _ticket(client, "LIVE01").id
    assert client.post(f"/tickets/{worked}/notes", json={"text": "desk 重要备注 KEEPME"}).status_code == 200
    assert client.post(f"/tickets/{worked}/status", json={"status": "resolved"}).status_code == 200

    again = _import(client, _csv(("LIVE01", "处理中", "旧系统记录B"), ("LIVE02", "处理中", "旧系统记录B")))
    assert (again["updated"], again["conflicts"], again["unchanged"]) == (1, 1, 0)  # LIVE02: untouched, updated
    assert again["conflicting"] == [
        {"line": 2, "ticket": "LIVE01", "reason": again["conflicting"][0]["reason"]}  # type: ignore[index]
    ]
    kept = client.get(f"/tickets/{worked}").json()
    assert kept["ticket"]["status"] == "resolved" and "旧系统记录B" not in str(kept)
    assert "KEEPME" in str(kept["events"])
    assert _ticket(client, "LIVE02").work_notes == "旧系统记录B"
    conflicts = _audited(client, "ticket.import_conflict")
    assert conflicts == [(SYSADMIN_USER, f"ticket {worked} kb-zh:LIVE01", conflicts[0][2])]
    assert "desk" in conflicts[0][2]
    assert _audited(client, "ticket.reimport") == [(SYSADMIN_USER, "kb-zh", "1 rows updated")]

    third = _import(client, _csv(("LIVE01", "处理中", "旧系统记录B"), ("LIVE02", "处理中", "旧系统记录B")))
    assert (third["updated"], third["conflicts"], third["unchanged"]) == (0, 1, 1)
    assert kb_of(client).audit.verify().ok


def _other_export(tmp_path: Path, source: str) -> Path:
    """The kb-zh mapping under another ``source`` name: the export of another system."""
    mapping = tmp_path / f"{source}.yaml"
    text = (ROOT / "kb/data/mappings/kb-zh.yaml").read_text(encoding="utf-8")
    mapping.write_text(text.replace("source: kb-zh", f"source: {source}"), encoding="utf-8")
    return mapping


def test_an_import_row_may_not_take_another_tickets_number(client: TestClient, tmp_path: Path) -> None:
    """Found by session 9's outside tester: a kb-zh row numbered T00000003 became a second "T00000003" beside the
    desk's ticket 3 (another requester, another group), so a resolution recorded on one credited both (L8)."""
    opened = client.post(
        "/tickets", json={"title": "VPN 断线", "description": "VPN 每小时断一次", "service": "日常服务"}
    )
    desk_number = opened.json()["ticket"]["external_id"]
    export = tmp_path / "old.csv"
    export.write_bytes(_csv(("INC-8", "已关闭", "")))
    assert import_tickets(kb_of(client).database, export, _other_export(tmp_path, "old-itsm")).created == 1

    rows = ((desk_number, "已关闭", ""), ("T99999999", "已关闭", ""), ("INC-8", "已关闭", ""), ("INC-9", "已关闭", ""))
    report = _import(client, _csv(*rows))
    assert (report["created"], report["conflicts"]) == (1, 3)
    reasons = {c["ticket"]: c["reason"] for c in report["conflicting"]}  # type: ignore[attr-defined]
    assert "desk" in reasons[desk_number] and "desk" in reasons["T99999999"] and "old-itsm" in reasons["INC-8"]
    with kb_of(client).database.session() as session:
        for number, source in ((desk_number, "desk"), ("INC-8", "old-itsm")):
            assert [t.source for t in session.query(Ticket).filter(Ticket.external_id == number)] == [source]
        assert session.query(Ticket).filter(Ticket.external_id == "T99999999").count() == 0
    audited = {obj for _, obj, _ in _audited(client, "ticket.import_conflict")}
    assert audited == {f"kb-zh:{desk_number}", "kb-zh:T99999999", "kb-zh:INC-8"}


def test_a_mapping_may_not_name_the_desk_as_its_source(client: TestClient, tmp_path: Path) -> None:
    """Found by session 9's outside tester's L8 (follow-up): an export under the desk's own source name would pass
    its rows off as tickets the desk took in (no import audit row) and reach the desk's tickets by number."""
    export = tmp_path / "desk.csv"
    export.write_bytes(_csv(("X-1", "已关闭", "")))
    with pytest.raises(InvalidInputError, match="desk"):
        import_tickets(kb_of(client).database, export, _other_export(tmp_path, "desk"))


def test_an_updated_ticket_is_encoded_again_from_its_new_text(client: TestClient) -> None:
    """An untouched ticket updated by a re-import drops its stored embedding, so similar tickets (and the credential
    check of what they show) use the new text (session 9's outside tester, M7 follow-up)."""
    _import(client, _csv(("OLD-1", "已关闭", "旧记录")))
    kb = kb_of(client)
    assert kb.ticket_vectors.embed_closed() == 1 and _ticket(client, "OLD-1").embedding is not None
    assert _import(client, _csv(("OLD-1", "已关闭", "新记录")))["updated"] == 1
    assert _ticket(client, "OLD-1").embedding is None
    assert kb.ticket_vectors.embed_closed() == 1
