"""Helpers shared by the tests (paths to real data, small HTTP helpers, test messages). Fixtures live in the
conftest.py files."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient

from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_ARTICLES = SHARED / "data" / "articles"
BUNDLED = ROOT / "articles"
DATA = Path(__file__).resolve().parent / "data"
#: Chinese desk tickets of the kb-zh mapping, with groups of alike closed tickets.
EXPORT = DATA / "tickets-zh-distill.csv"
RDS = BUNDLED / "windows-troubleshooting/WindowsServerDocs/remote/remote-desktop-services/troubleshoot"
NO_LICENSES = (RDS / "rdp-error-no-licenses-available.md").read_text(encoding="utf-8")


def kb_of(client: TestClient) -> KnowledgeBase:
    """The knowledge base behind a test client's app."""
    kb: KnowledgeBase = client.app.state.kb  # type: ignore[attr-defined]
    return kb


def create(client: TestClient, body: str, **fields: object) -> dict[str, object]:
    """POST an article and return its JSON article; asserts 201."""
    response = client.post("/articles", json={"body": body, **fields})
    assert response.status_code == 201, response.text
    article: dict[str, object] = response.json()["article"]
    return article


def search_ids(client: TestClient, q: str, **params: object) -> list[int]:
    response = client.get("/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [r["article_id"] for r in response.json()["results"]]


def send(port: int, message: EmailMessage) -> None:
    """Deliver ``message`` over SMTP to 127.0.0.1:``port``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as server:
        server.send_message(message)


def mail(subject: str, body: str, sender: str = "wang.qiang@example.com", **headers: str) -> EmailMessage:
    """A plain-text mail to the help desk (``Message_ID=...`` becomes the Message-ID header)."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"王强 <{sender}>", "helpdesk@example.com", subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def onebot(message_id: int, text: str, user_id: int = 10001) -> dict[str, object]:
    """A OneBot v11 private message event as go-cqhttp posts it."""
    return {
        "time": 1764400000, "self_id": 90000, "post_type": "message", "message_type": "private", "sub_type": "friend",
        "message_id": message_id, "user_id": user_id, "message": text, "raw_message": text, "font": 0,
        "sender": {"user_id": user_id, "nickname": "小李", "sex": "unknown", "age": 0},
    }  # fmt: skip
