"""Helpers shared by the tests (paths to real data, small HTTP helpers, test messages). Fixtures live in the
conftest.py files."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from kb.config import Settings
from kb.models import User
from kb.search.embedders.base import Embedder
from kb.search.text import TextAnalyzer
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


#: The user the ``client`` fixture logs in as: the business roles the API tests act in. No administrator role:
#: an administrator role is held alone (kb.identity.roles.check_roles); the system administrator is
#: :data:`SYSADMIN_USER`, an account of its own.
TEST_USER = "dev"
TEST_PASSWORD = "Kb-test-2026!"
TEST_ROLES = ["desk_lead", "kb_editor"]  # desk_lead: every ticket, whatever its group
#: Resolver groups of :data:`TEST_USER` beyond the catalog's: tickets may be assigned to them (kb.desk.resolver_groups).
TEST_GROUPS = ["桌面组", "网络组"]
#: The system administrator of the tests (users, imports, metrics), with ``sysadmin`` alone.
SYSADMIN_USER = "sys.admin"
SYSADMIN_PASSWORD = TEST_PASSWORD  # the seeded accounts of the page tests share one password


def add_test_user(kb: KnowledgeBase) -> None:
    """Create :data:`TEST_USER` with :data:`TEST_PASSWORD`, :data:`TEST_ROLES` and :data:`TEST_GROUPS`, and
    :data:`SYSADMIN_USER`; both enrolled in TOTP (required for the administrator, optional for the other)."""
    kb.accounts.create(TEST_USER, TEST_ROLES, "tests", groups=TEST_GROUPS, password=TEST_PASSWORD, must_change=False)
    kb.accounts.enrol_totp(TEST_USER)
    kb.accounts.create(SYSADMIN_USER, ["sysadmin"], "tests", password=SYSADMIN_PASSWORD, must_change=False)
    kb.accounts.enrol_totp(SYSADMIN_USER)


def totp_now(kb: KnowledgeBase, username: str) -> str | None:
    """The current TOTP code of ``username`` as its authenticator app shows it, or None when not enrolled.

    A code is accepted once (kb.identity.totp); tests log in many times a minute, so this also forgets the step
    last used, as if the next 30-second window had come (tests/identity/test_totp.py proves the refusal)."""
    with kb.database.session() as session:
        user = session.scalar(select(User).where(User.username == username.casefold()))
        if user is None or not user.totp_secret:
            return None
        user.totp_last_step = None
        return pyotp.TOTP(kb.accounts.totp_seed(user)).now()


def login(client: TestClient, username: str = TEST_USER, password: str = TEST_PASSWORD) -> str:
    """Log in through POST /auth/login (with the current TOTP code when the user is enrolled), send the token as
    ``Authorization: Bearer`` from now on; returns it."""
    code = totp_now(kb_of(client), username)
    response = client.post("/auth/login", json={"username": username, "password": password, "totp": code})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return token


def anonymous(client: TestClient) -> TestClient:
    """Another client of the same running app with no session (no cookie, no token)."""
    return TestClient(client.app, base_url="https://testserver")


#: The password of the users :func:`new_user` creates.
NEW_USER_PASSWORD = "Kb-user-2026!x"


def new_user(client: TestClient, name: str, roles: list[str], groups: tuple[str, ...] = ()) -> TestClient:
    """Another client of the same running app, logged in as a new user ``name`` with ``roles`` and ``groups``."""
    kb_of(client).accounts.create(name, roles, "tests", groups=groups, password=NEW_USER_PASSWORD, must_change=False)
    other = anonymous(client)
    login(other, name, NEW_USER_PASSWORD)
    return other


def sysadmin(client: TestClient) -> TestClient:
    """Another client of the same running app logged in as :data:`SYSADMIN_USER`."""
    admin = anonymous(client)
    login(admin, SYSADMIN_USER, SYSADMIN_PASSWORD)
    return admin


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


#: The OneBot secret of the test settings (KB_IM_WEBHOOK_SECRET).
ONEBOT_SECRET = "onebot-test-secret"


def post_im(client: TestClient, event: dict[str, object] | bytes, secret: str = ONEBOT_SECRET) -> Response:
    """POST ``event`` (an object, or raw body bytes) to /intake/im signed as OneBot v11 does: ``X-Signature: sha1=``
    HMAC-SHA1 of the body."""
    body = event if isinstance(event, bytes) else json.dumps(event, ensure_ascii=False).encode("utf-8")
    signature = "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    headers = {"Content-Type": "application/json", "X-Signature": signature}
    return anonymous(client).post("/intake/im", content=body, headers=headers)


def onebot(message_id: int, text: str, user_id: int = 10001) -> dict[str, object]:
    """A OneBot v11 private message event as go-cqhttp posts it."""
    return {
        "time": 1764400000, "self_id": 90000, "post_type": "message", "message_type": "private", "sub_type": "friend",
        "message_id": message_id, "user_id": user_id, "message": text, "raw_message": text, "font": 0,
        "sender": {"user_id": user_id, "nickname": "小李", "sex": "unknown", "age": 0},
    }  # fmt: skip


def run_folder(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The temporary folder of the whole test run: shared by the xdist workers (the parent of each worker's
    base folder), the base folder itself without xdist. For set-up built once per run under a file lock."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


def wait_until(condition: Callable[[], object], seconds: float = 30.0) -> bool:
    """Poll ``condition`` every 50 ms until it is true (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def applying(
    settings: Settings, analyzer: TextAnalyzer, embedder: Embedder, index_wait_seconds: float
) -> Iterator[KnowledgeBase]:
    """An open knowledge base of ``settings`` whose background applier runs, a write waiting at most
    ``index_wait_seconds`` for the index (then answered as not indexed, a 202); closed afterwards."""
    quick = settings.model_copy(update={"index_wait_seconds": index_wait_seconds})
    service = KnowledgeBase(quick, embedder=embedder, analyzer=analyzer).open()
    try:
        service.start_background_applier()
        assert wait_until(lambda: service.index.handoff.wait_s is not None)
        yield service
    finally:
        service.close()
