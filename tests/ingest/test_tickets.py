"""Ticket import through mappings: the real English export (47,837 tickets), our Chinese schema, bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kb.cli.main import main
from kb.db import Database
from kb.errors import InvalidInputError
from kb.ingest.mapping import load_mapping
from kb.ingest.tickets import import_tickets
from kb.models import Ticket
from tests.helpers import DATA, SHARED, sysadmin

IT_TICKETS = SHARED / "data/tickets/it-tickets-en/all_tickets_processed_improved_v3.csv.zip"

# tests/data/tickets-zh.csv: our Chinese export layout (kb/data/mappings/kb-zh.yaml). Line 3 has an unknown
# status, line 4 a satisfaction of 9,
# line 5 no ticket id, line 6 is a row with one cell too many: each is reported by its line and skipped.
ZH_CSV = (DATA / "tickets-zh.csv").read_text(encoding="utf-8")


def test_real_english_export_imports_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.environ["KB_DATA_DIR"] = str(tmp_path / "data")
    os.environ["KB_EMBEDDING_MODEL"] = "hash"
    try:
        assert main(["tickets", "import", str(IT_TICKETS), "--mapping", "it-tickets-en", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["rows"] == report["created"] == 47_837 and report["failed"] == 0
        assert main(["tickets", "import", str(IT_TICKETS), "--mapping", "it-tickets-en"]) == 0
        assert "0 created, 0 updated, 47837 unchanged, 0 skipped" in capsys.readouterr().out
    finally:
        del os.environ["KB_DATA_DIR"], os.environ["KB_EMBEDDING_MODEL"]
    database = Database(f"sqlite:///{tmp_path / 'data' / 'kb.sqlite3'}")
    try:
        with database.session() as session:
            groups = dict(
                session.execute(select(Ticket.resolver_group, func.count()).group_by(Ticket.resolver_group)).all()
            )
            first = session.scalar(select(Ticket).where(Ticket.external_id == "1"))
        assert groups["Hardware"] == 13_617 and groups["Administrative rights"] == 1_760 and len(groups) == 8
        assert first is not None and first.status == "closed" and first.category == "Hardware"
        assert first.title.startswith("connection with icon") and len(first.title) <= 81
    finally:
        database.dispose()


def test_chinese_export_reports_bad_rows_by_line(client: TestClient) -> None:
    response = sysadmin(client).post(
        "/ingest/tickets",
        params={"mapping": "kb-zh"},
        content=ZH_CSV.encode("utf-8"),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 6 and report["created"] == 2 and report["failed"] == 4
    lines = {e["line"]: e["error"] for e in report["errors"]}
    assert set(lines) == {3, 4, 5, 6}
    assert "status" in lines[3] and "satisfaction" in lines[4] and "工单号" in lines[5] and "cells" in lines[6]
    again = sysadmin(client).post("/ingest/tickets", params={"mapping": "kb-zh"}, content=ZH_CSV.encode("utf-8")).json()
    assert again["created"] == 0 and again["unchanged"] == 2
    distilled = client.post("/ingest/distill", params={"source": "kb-zh"}).json()
    assert distilled["tickets"] == 2 and distilled["groups"] == 0  # two unlike tickets: no draft


def test_a_jsonl_export_as_stated_and_odd_cells_are_row_errors(client: TestClient) -> None:
    """Session 12's outside tester: ``format=jsonl`` was ignored for a mapping that names ``format: csv`` (every row
    failed as CSV), and a list or 1e400 where a number is due answered 500 instead of a row error."""
    header = ZH_CSV.splitlines()[0].split(",")
    good = dict(zip(header, ZH_CSV.splitlines()[1].split(","), strict=True))
    rows = [good, {**good, "工单号": "INC-J2", "满意度": [5]}, {**good, "工单号": "INC-J3", "满意度": {"a": 1}}]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + '\n{"工单号": "INC-J4", "满意度": 1e400}\n'
    response = sysadmin(client).post(
        "/ingest/tickets", params={"mapping": "kb-zh", "format": "jsonl"}, content=body.encode("utf-8")
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["created"], report["failed"]) == (4, 1, 3), report
    assert {e["line"] for e in report["errors"]} == {2, 3, 4}
    assert all("satisfaction" in e["error"] for e in report["errors"]), report["errors"]


def test_chinese_fields_are_mapped(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(ZH_CSV, encoding="utf-8")
    database = Database(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    database.migrate()
    try:
        import_tickets(database, export, load_mapping("kb-zh"))
        with database.session() as session:
            vpn = session.scalar(select(Ticket).where(Ticket.external_id == "INC-0001"))
            share = session.scalar(select(Ticket).where(Ticket.external_id == "INC-0006"))
        assert vpn is not None and share is not None
        assert (vpn.status, vpn.channel, vpn.resolver_group, vpn.satisfaction) == ("closed", "phone", "网络组", 5)
        assert vpn.root_cause == "VPN 网关路由表缺少 OA 网段" and vpn.configuration_item == "VPN-GW-01"
        assert vpn.closed_at is not None and vpn.opened_at is not None
        assert (vpn.closed_at - vpn.opened_at).total_seconds() == 53 * 60
        assert share.opened_at is not None and share.opened_at.hour == 9  # no offset in the export: taken as UTC
    finally:
        database.dispose()


def test_control_characters_in_an_export_are_removed_as_on_every_intake_channel(tmp_path: Path) -> None:
    """An export is an intake channel: NUL (which PostgreSQL cannot store) and terminal escapes pasted into a
    ticket are removed, never stored and never a failed row (kb.ingest.intake_text)."""
    header, first, *_ = ZH_CSV.splitlines()
    export = tmp_path / "export.csv"
    dirty = first.replace("INC-0001", "INC-\x000001", 1).replace("VPN", "V\x00P\x1b[31mN", 1)
    export.write_text(f"{header}\n{dirty}\n", encoding="utf-8")
    database = Database(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    database.migrate()
    try:
        report = import_tickets(database, export, load_mapping("kb-zh"))
        assert report.created == 1 and not report.errors
        with database.session() as session:
            ticket = session.scalars(select(Ticket)).one()
        assert ticket.external_id == "INC-0001"
        text = " ".join(str(getattr(ticket, f) or "") for f in ("title", "description", "root_cause", "resolution"))
        assert "VPN" in text and "\x00" not in text and "\x1b" not in text
    finally:
        database.dispose()


def test_bad_mapping_and_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="bundled: it-tickets-en, kb-zh"):
        load_mapping("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: x\nfields: {colour: Document}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="unknown ticket fields colour"):
        load_mapping(bad)
    database = Database(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    try:
        with pytest.raises(InvalidInputError, match="No ticket export"):
            import_tickets(database, tmp_path / "missing.csv", load_mapping("kb-zh"))
    finally:
        database.dispose()
