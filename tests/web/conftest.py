"""A real ``kb serve`` (uvicorn, in a subprocess) on a free port over a temp data dir holding every bundled
article (``articles/``, as ``make run`` serves), one hostile article, a retired one and the real desk export
replayed, with test users made through the real account store; and Playwright driving Debian's Chromium
(``/usr/bin/chromium``; Playwright's own browser download is never used).

The hashing embedder keeps start-up fast (these tests are not marked slow).
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kb.articles.content import ArticleContent, parse_markdown
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.db import open_database
from kb.desk.workflow import Closure, NewTicket
from kb.identity.data_key import DataKey
from kb.ingest.tickets import import_tickets
from kb.models import User
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from kb.web.app import create_app
from tests.helpers import BUNDLED, EXPORT, ROOT, TEST_PASSWORD, TEST_USER, add_test_user, kb_of, run_folder, totp_now
from tests.serving import serve

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: A user with one role that grants no page of the workbench but the audit viewer.
AUDITOR = "auditor"
#: A user who may search and read but not work tickets.
REQUESTER = "asker"
#: The security administrator (安全管理员), and a user of their pages: locked, unlocked and given roles by them.
SECADMIN = "sec.officer"
LOCKME = "lock.me"
#: An article whose body tries script injection; it must render inert.
HOSTILE = """# 恶意脚本测试文章

正文里的脚本 <script>window.__pwned = true;</script> 不应执行。

[点我](javascript:window.__pwned=true) 和 <img src=x onerror="window.__pwned=true"> 也不应生效。

1. 第一步：重启打印后台处理程序。
2. 第二步：清空打印队列。
"""


#: Desk tickets replayed from the real export, and its channel names.
DESK_ROWS = 10
CHANNELS = {"热线": "phone", "电话": "phone", "QQ": "im", "微信": "im", "邮件": "email", "网页": "web"}
#: Window of the replayed tickets (their report times), for the dashboard.
REPLAY_WINDOW = ("2026-10-01", "2026-11-30")
#: Longest wait for ``kb serve`` to answer ``/health``, in seconds (a start takes ~5 s alone, minutes on a
#: machine loaded by other jobs).
START_SECONDS = 240
#: A retired article replaced by the hostile one (its page shows a successor banner).
RETIRED = "# 旧版打印机排障\n\n请改看新文章。\n"


@dataclass(frozen=True)
class Server:
    """A running ``kb serve``: its base URL, its settings (same data dir), and ids of the seeded articles."""

    url: str
    settings: Settings
    hostile_id: int
    licensing_id: int
    retired_id: int
    proposal_id: int


def _replay_desk(service: KnowledgeBase) -> None:
    """The real Chinese desk export (tests/data/tickets-zh-distill.csv): imported as history (similar tickets),
    and its first rows taken in again as desk tickets at their own times, half of them resolved, closed and rated."""
    import_tickets(service.database, EXPORT, "kb-zh")
    service.ticket_vectors.embed_closed()
    with EXPORT.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:DESK_ROWS]
    for n, row in enumerate(rows):
        new = NewTicket(
            title=row["标题"],
            description=row["问题描述"],
            service=row["服务类型"],
            channel=CHANNELS.get(row["受理渠道"], "web"),
            opened_at=dt.datetime.fromisoformat(row["报告时间"]),
        )
        ticket = service.tickets.take_in(new, "tests").ticket
        if n % 2 == 0:
            service.desk.assign(ticket.id, ticket.resolver_group or "服务台", "tests")
            for status in ("in_progress", "resolved"):
                service.desk.move(ticket.id, status, "tests")
            closure = Closure(
                resolution=row["解决方案"] or "已处理",
                root_cause=row["根本原因"] or "未知",
                satisfaction=int(row["满意度"]) if row["满意度"].isdigit() else 4,
            )
            service.desk.close(ticket.id, closure, "tests")


def _proposal(service: KnowledgeBase, target: int) -> int:
    """An update proposal for article ``target`` as distillation writes one (:mod:`kb.desk.distill`): a draft with
    ``meta.proposal = "update"``, from tickets of the replayed export."""
    current = service.store.get(target)
    body = current.body + "\n\n## 来自工单的补充\n\n- 许可证服务器重启后，在 RD 授权管理器中重新激活服务器。\n"
    meta = {"proposal": "update", "target_article": target, "distilled_from": {"source": "kb-zh", "group_size": 6}}
    content = ArticleContent(
        title=f"更新建议：{current.title}", body=body, kind="troubleshooting", status="draft", meta=meta
    )
    article = service.writer.create(content, "distill").article
    assert article is not None
    return article.id


def _seed(settings: Settings) -> tuple[int, int, int, int]:
    service = KnowledgeBase(settings).open()
    try:
        add_test_user(service)
        service.accounts.create(AUDITOR, ["auditadmin"], "tests", password=TEST_PASSWORD, must_change=False)
        service.accounts.enrol_totp(AUDITOR)
        service.accounts.create(REQUESTER, ["requester"], "tests", password=TEST_PASSWORD, must_change=False)
        service.accounts.create(SECADMIN, ["secadmin"], "tests", password=TEST_PASSWORD, must_change=False)
        service.accounts.enrol_totp(SECADMIN)
        service.accounts.create(LOCKME, ["requester"], "tests", password=TEST_PASSWORD, must_change=False)
        service.writer.import_paths([BUNDLED], "tests")  # every bundled article, as `make run` serves
        hostile = service.writer.create(parse_markdown(HOSTILE, service="打印"), "tests").article
        assert hostile is not None
        service.writer.update(
            hostile.id, parse_markdown(HOSTILE + "3. 第三步：重新发送打印任务。\n", service="打印"), "tests"
        )
        old = service.writer.create(parse_markdown(RETIRED, service="打印"), "tests").article
        assert old is not None
        service.writer.set_status(old.id, "retired", "tests", superseded_by=hostile.id)
        _replay_desk(service)
        items, _ = service.store.list_articles(ArticleFilter(statuses=()), 0, 500)
        licensing = next(a.id for a in items if (a.source_path or "").endswith("rdp-error-no-licenses-available.md"))
        return hostile.id, licensing, old.id, _proposal(service, licensing)
    finally:
        service.close()


@pytest.fixture
def web_client(settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder) -> Iterator[TestClient]:
    """The whole app (API + pages) in process over HTTPS, not logged in; the database holds TEST_USER."""
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)
    add_test_user(service)
    with TestClient(create_app(settings, kb=service), base_url="https://testserver") as client:
        yield client


def page_login(client: TestClient, username: str = TEST_USER, password: str = TEST_PASSWORD) -> None:
    """Log ``client`` in through the login page (form, CSRF cookie, TOTP when enrolled)."""
    form = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    code = totp_now(kb_of(client), username) or ""
    data = {"username": username, "password": password, "totp": code, "csrf_token": token.group(1)}
    answer = client.post("/ui/login", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def csrf_of(client: TestClient, path: str = "/") -> str:
    """The CSRF token a page of the logged-in ``client`` embeds."""
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', client.get(path).text)
    assert found is not None
    return found.group(1)


#: What :func:`_seed` returns, in the order :class:`Server` takes it (kept beside the seeded data folder).
SEED_IDS = "seed-ids.json"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A data folder seeded by :func:`_seed` once for the whole run (the xdist workers share it under a file lock:
    seeding imports every bundled article and replays the desk, 15-30 s), copied by each worker's server."""
    root = run_folder(tmp_path_factory, worker_id)
    folder = root / "web-seed"
    with (root / "web-seed.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / SEED_IDS).is_file():
            building = root / f"web-seed.{os.getpid()}"
            ids = _seed(Settings(data_dir=building, embedding_model="hash"))
            (building / SEED_IDS).write_text(json.dumps(ids), encoding="utf-8")
            building.rename(folder)
    return folder


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, seeded: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("web") / "data"
    shutil.copytree(seeded, data)  # nothing has the seed open: its SQLite file and index are at rest
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data),
        "KB_EMBEDDING_MODEL": "hash",
        # no KB_INSECURE_COOKIES: Chromium keeps Secure cookies from http://127.0.0.1, as `make run` serves
        "KB_INDEX_POLL_SECONDS": "0.2",
        "KB_LOGIN_RATE_LIMIT": "600/minute",  # every browser test logs in from 127.0.0.1
        "PYTHONPATH": str(ROOT),
    }
    settings = Settings(data_dir=data, embedding_model="hash")
    hostile_id, licensing_id, retired_id, proposal_id = json.loads((data / SEED_IDS).read_text(encoding="utf-8"))
    served = serve(env, data.parent, timeout_s=START_SECONDS)
    try:
        yield Server(served.url, settings, hostile_id, licensing_id, retired_id, proposal_id)
    finally:
        served.process.terminate()
        served.process.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


def totp_of(server: Server, username: str) -> str | None:
    """The current TOTP code of ``username`` (read from the server's database, as an authenticator app would);
    the step last used is forgotten, as :func:`tests.helpers.totp_now` does."""
    database = open_database(server.settings)
    try:
        with database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None or not user.totp_secret:
                return None
            user.totp_last_step = None  # a code is accepted once; tests log in many times a minute (see totp_now)
            return pyotp.TOTP(DataKey.from_settings(server.settings).open(user.totp_secret)).now()
    finally:
        database.engine.dispose()


def new_page(browser, server: Server, *, width: int = 1366, height: int = 768):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) with clipboard permissions, at ``width`` x ``height``."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def log_in(page, server: Server, username: str = TEST_USER, next_path: str = "/") -> None:  # type: ignore[no-untyped-def]
    """Log in through the login page (user name, password, TOTP when enrolled) and land on ``next_path``."""
    page.goto(next_path)
    page.wait_for_url(re.compile(r"/ui/login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", TEST_PASSWORD)
    code = totp_of(server, username)
    if code:
        page.fill("input[name=totp]", code)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server.url + next_path.split("?")[0])))


@pytest.fixture
def page(browser, server: Server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A logged-in page (as the test user: desk_lead, kb_editor) at 1366x768."""
    p = new_page(browser, server)
    log_in(p, server)
    try:
        yield p
    finally:
        p.context.close()


def shot(page, name: str, *, full_page: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Save a screenshot of the page to docs/screenshots/<name>.png when ``KB_SCREENSHOTS=1`` is set (README,
    Workbench: how to refresh them), the whole page with ``full_page``; otherwise nothing is written, so a test run
    leaves the tree clean."""
    if os.environ.get("KB_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
