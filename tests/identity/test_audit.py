"""The audit trail (安全审计, GB/T 22239-2019 7.1.4.3; 数据完整性 7.1.4.7): written with the action, append-only by
trigger, HMAC-chained, verified by ``kb audit verify``; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from kb.cli.main import main
from kb.config import Settings
from kb.desk.workflow import SOURCE
from kb.errors import ConflictError, InvalidInputError, UnauthorizedError
from kb.identity.audit import FAILURE, AuditContext, AuditTrail
from kb.identity.observer import DESK_SOURCE
from kb.identity.refusals import WINDOW, RefusedCredentials
from kb.models import utcnow
from kb.service import KnowledgeBase
from tests.helpers import anonymous, kb_of

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"
ALICE = AuditContext("alice", ("sysadmin",), "10.0.0.7")


def _events(kb: KnowledgeBase) -> list[tuple[str, str, str, str]]:
    _, rows = kb.audit.query(limit=1000)
    return [(r.event, r.actor, r.object, r.result) for r in reversed(rows)]


def test_identity_actions_are_audited_in_their_own_transaction(kb: KnowledgeBase) -> None:
    kb.accounts.create("zhang.san", ["agent"], "alice", password=GOOD, context=ALICE, must_change=False)
    with pytest.raises(ConflictError):
        kb.accounts.create(
            "Zhang.San", ["agent"], "alice", password=GOOD, context=ALICE, must_change=False
        )  # rolled back: no row
    with pytest.raises(UnauthorizedError):
        kb.sessions.login("zhang.san", "Wrong-pass-1", ip="10.0.0.9")
    with pytest.raises(UnauthorizedError):
        kb.sessions.login("P@ss-typed-as-name", "x")
    token = kb.sessions.login("zhang.san", GOOD, ip="10.0.0.9").token
    kb.sessions.logout(token, AuditContext("zhang.san", ("agent",), "10.0.0.9"))
    with pytest.raises(UnauthorizedError):
        kb.sessions.resolve(token)
    kb.accounts.set_active("zhang.san", False, ALICE)
    assert _events(kb) == [
        ("user.create", "alice", "zhang.san", "success"),
        ("login", "zhang.san", "zhang.san", "failure"),
        ("login", "(unknown)", "(unknown)", "failure"),
        ("login", "zhang.san", "zhang.san", "success"),
        ("logout", "zhang.san", "zhang.san", "success"),
        ("session", "(unknown)", "(unknown)", "failure"),
        ("user.disable", "alice", "zhang.san", "success"),
    ]
    _, rows = kb.audit.query(event="login", result=FAILURE)
    assert {r.reason for r in rows} == {"wrong password", "unknown user"}
    everything = " ".join(f"{r.actor} {r.object} {r.reason}" for r in kb.audit.query(limit=1000)[1])
    assert "P@ss-typed-as-name" not in everything.casefold() and GOOD not in everything and token not in everything
    assert kb.audit.query(actor="ALICE")[0] == 2 and kb.audit.verify().ok


def test_the_table_refuses_update_and_delete(kb: KnowledgeBase) -> None:
    kb.audit.write(ALICE, "import", "tickets.csv")
    for statement in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), kb.database.session() as session:
            session.execute(text(statement))
    if kb.database.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), kb.database.session() as session:
            session.execute(text("TRUNCATE audit_events"))
    assert kb.audit.query()[0] == 1 and kb.audit.verify().ok


def _untriggered(kb: KnowledgeBase, statement: str) -> None:
    """Run ``statement`` as someone with database owner rights would, past the triggers."""
    with kb.database.session() as session:
        if kb.database.engine.dialect.name == "postgresql":
            session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            session.execute(text(statement))
            session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        else:
            session.execute(text("DROP TRIGGER audit_events_no_update"))
            session.execute(text("DROP TRIGGER audit_events_no_delete"))
            session.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "broken", "reason"),
    [
        ("UPDATE audit_events SET result = 'success' WHERE seq = 2", 2, "contents"),
        ("UPDATE audit_events SET at = at WHERE seq = 3", None, ""),
        ("DELETE FROM audit_events WHERE seq = 2", 3, "missing"),
        ("DELETE FROM audit_events WHERE seq = 4", 4, "missing"),
    ],
)
def test_tampering_breaks_the_chain_at_the_row(
    kb: KnowledgeBase,
    settings: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    statement: str,
    broken: int | None,
    reason: str,
) -> None:
    for i in range(4):
        kb.audit.write(ALICE, "article.publish", f"article {i}", result=FAILURE if i == 1 else "success")
    assert kb.audit.verify().ok
    _untriggered(kb, statement)
    report = kb.audit.verify()
    assert (report.broken_seq, reason in report.reason) == (broken, True)
    for name in ("data_dir", "database_url", "audit_key"):
        monkeypatch.setenv(f"KB_{name.upper()}", str(getattr(settings, name)))
    assert main(["audit", "verify"]) == (0 if broken is None else 1)
    captured = capsys.readouterr()
    assert (f"broken at row {broken}" in captured.err) if broken else ("intact: 4 rows" in captured.out)


def test_another_key_does_not_verify(kb: KnowledgeBase) -> None:
    kb.audit.write(ALICE, "import", "a")
    assert AuditTrail(kb.database, "another-key-of-16+").verify().broken_seq == 1


def test_concurrent_writers_keep_one_chain(kb: KnowledgeBase) -> None:
    def work(n: int) -> None:
        for i in range(10):
            kb.audit.write(AuditContext(f"w{n}"), "ticket.close", f"T{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = kb.audit.verify()
    assert report.ok and report.rows == 40


def test_audit_verify_on_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_EMBEDDING_MODEL", "hash")
    assert main(["audit", "verify"]) == 2  # no knowledge base there at all: said so, none created
    assert not (tmp_path / "data" / "kb.sqlite3").exists()
    KnowledgeBase(Settings()).close()  # a knowledge base with no audit rows yet
    assert main(["audit", "verify"]) == 0


def test_the_observer_knows_the_desk_source() -> None:
    assert DESK_SOURCE == SOURCE


def test_archive_exports_and_purges_only_rows_older_than_184_days(kb: KnowledgeBase, tmp_path: Path) -> None:
    for i in range(3):
        with kb.database.session() as session:
            kb.audit.record(session, ALICE, "login", f"old {i}", at=utcnow() - timedelta(days=200 - i))
    for i in range(2):
        kb.audit.write(ALICE, "login", f"new {i}")
    with pytest.raises(DBAPIError, match="append-only"), kb.database.session() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = 5"))  # young rows: never
    with pytest.raises(InvalidInputError, match="184 days"):
        kb.audit.archive(tmp_path / "a.jsonl", ALICE, older_than_days=100)
    target = tmp_path / "audit-2026.jsonl"
    assert kb.audit.archive(target, ALICE) == 3
    exported = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(r["seq"], r["object"]) for r in exported] == [(1, "old 0"), (2, "old 1"), (3, "old 2")]
    total, rows = kb.audit.query()
    assert total == 3 and rows[0].event == "audit.archive" and "rows 1-3" in rows[0].reason
    assert kb.audit.verify().ok and kb.audit.archive(target, ALICE) == 0


def test_removing_the_oldest_rows_outside_archive_is_detected(kb: KnowledgeBase) -> None:
    with kb.database.session() as session:
        kb.audit.record(session, ALICE, "login", "old", at=utcnow() - timedelta(days=300))
    kb.audit.write(ALICE, "login", "new")
    with kb.database.session() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = 1"))  # old enough for the trigger
    report = kb.audit.verify()
    assert (report.broken_seq, "last archived row 0" in report.reason) == (2, True)


def test_kb_audit_archive_command(
    kb: KnowledgeBase,
    settings: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with kb.database.session() as session:
        kb.audit.record(session, ALICE, "login", "old", at=utcnow() - timedelta(days=190))
    for name in ("data_dir", "database_url", "audit_key"):
        monkeypatch.setenv(f"KB_{name.upper()}", str(getattr(settings, name)))
    assert main(["audit", "archive", str(tmp_path / "out.jsonl")]) == 0
    assert "archived and purged 1 rows" in capsys.readouterr().out
    assert main(["audit", "archive", str(tmp_path / "out.jsonl"), "--older-than-days", "30"]) == 2
    assert main(["audit", "verify"]) == 0


def _refusal_rows(kb: KnowledgeBase) -> list[tuple[str, str, str, str]]:
    _, rows = kb.audit.query(result=FAILURE, limit=1000)
    return [
        (r.event, r.source_ip, r.actor, r.reason) for r in reversed(rows) if r.event in ("session", "service.token")
    ]


def test_a_flood_of_forged_tokens_writes_two_rows_a_minute_per_source(client: TestClient) -> None:
    """Found by session 9's outside tester: every request with a random Bearer token wrote a permanent audit row
    (kept 184 days), with no limit: anyone could flood the trail. Now the first refusal of a kind from an address
    is written at once (the security event is on record, 7.1.4.3 a) and the rest of that minute are counted into
    one more row (kb.identity.refusals); another address or kind has rows of its own."""
    kb = kb_of(client)
    flood = anonymous(client)
    for n in range(50):
        assert flood.get("/articles", headers={"Authorization": f"Bearer forged-{n}"}).status_code == 401
    for n in range(5):
        answer = flood.post(
            "/tickets", json={}, headers={"Authorization": f"Bearer kbs_forged{n}", "Idempotency-Key": "k"}
        )
        assert answer.status_code == 401
    other = TestClient(client.app, base_url="https://testserver", client=("10.0.0.8", 50000))
    assert other.get("/articles", headers={"Authorization": "Bearer forged-x"}).status_code == 401
    first = [
        ("session", "testclient", "(unknown)", "unknown or ended token"),
        ("service.token", "testclient", "(unknown)", "unknown service token"),
        ("session", "10.0.0.8", "(unknown)", "unknown or ended token"),
    ]
    assert _refusal_rows(kb) == first  # one row per request before: 56
    assert kb.refusals.flush() == 0  # the minute has not passed
    assert kb.refusals.flush(now=utcnow() + WINDOW) == 2  # the address with one refusal has nothing to add
    summaries = _refusal_rows(kb)[3:]
    assert [(event, ip) for event, ip, _, _ in summaries] == [
        ("session", "testclient"),
        ("service.token", "testclient"),
    ]
    assert summaries[0][3].startswith("unknown or ended token: 49 more from this address between ")
    assert summaries[1][3].startswith("unknown service token: 4 more from this address between ")
    assert flood.get("/articles", headers={"Authorization": "Bearer forged-again"}).status_code == 401
    assert len(_refusal_rows(kb)) == 6  # a new minute: a new first row
    assert kb.audit.verify().ok


def test_refusals_beyond_the_open_windows_share_one(kb: KnowledgeBase) -> None:
    """However many addresses send forged tokens, the windows (memory) and their rows are bounded: past
    ``max_open`` every other address counts into one window of its kind."""
    now = utcnow()
    refusals = RefusedCredentials(kb.audit, max_open=2, clock=lambda: now)
    for n in range(20):
        with kb.database.session() as session:
            context = AuditContext("(unknown)", ip=f"10.1.0.{n}")
            refusals.record(session, context, "session", "(unknown)", "unknown or ended token")
    assert [ip for _, ip, _, _ in _refusal_rows(kb)] == ["10.1.0.0", "10.1.0.1", "10.1.0.2"]
    assert refusals.flush(everything=True) == 1
    shared = _refusal_rows(kb)[-1]
    assert shared[1] == "10.1.0.2" and "17 more from other addresses than the 2 counted" in shared[3]
    assert kb.audit.verify().ok
