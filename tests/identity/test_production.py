"""Production mode, security headers and the e-mail sender allow-list (入侵防范, GB/T 22239-2019 7.1.4.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from kb.api import create_app
from kb.config import DEVELOPMENT_DATA_KEY, Settings
from kb.desk.channels.email import handle_message
from kb.errors import InsecureConfigurationError, InvalidInputError
from kb.identity.hardening import check_sender_domain, ip_allowed, production_problems
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import anonymous, mail

pytestmark = pytest.mark.security

STRONG_KEY = "k" * 24 + "-production-audit-key"
DATA_KEY = Fernet.generate_key().decode()


def _production(tmp_path: Path, **changes: object) -> Settings:
    fields: dict[str, object] = {
        "data_dir": tmp_path, "embedding_model": "hash", "env": "production", "audit_key": STRONG_KEY,
        "dev_user": "ops.zhang", "data_key": f"{DATA_KEY},{DEVELOPMENT_DATA_KEY}",  # the old key may stay, to open
    }  # fmt: skip
    return Settings(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"insecure_cookies": True}, "KB_INSECURE_COOKIES"),
        ({"audit_key": "kb-development-audit-key"}, "KB_AUDIT_KEY"),
        ({"audit_key": "short-but-16-chars"}, "KB_AUDIT_KEY"),
        ({"dev_user": "dev"}, "development principal"),
        ({"data_key": DEVELOPMENT_DATA_KEY}, "KB_DATA_KEY"),
        ({"data_key": f"{DEVELOPMENT_DATA_KEY},{DATA_KEY}"}, "KB_DATA_KEY"),
    ],
)
def test_production_refuses_to_start_insecure(tmp_path: Path, change: dict[str, object], named: str) -> None:
    with pytest.raises(InsecureConfigurationError, match=named):
        create_app(_production(tmp_path, **change))
    assert production_problems(_production(tmp_path, env="development", **change)) == []  # development: allowed


def test_production_has_no_docs_and_sends_security_headers(
    tmp_path: Path, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    settings = _production(tmp_path)
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)
    with TestClient(create_app(settings, kb=service), base_url="https://testserver") as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert client.get(path).status_code == 404, path
        for response in (client.get("/health"), client.get("/search?q=x"), client.get("/nowhere")):
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_development_keeps_docs_and_headers(client: TestClient) -> None:
    assert anonymous(client).get("/openapi.json").status_code == 200
    response = anonymous(client).get("/tickets/1")  # a 401 carries the headers too
    assert response.status_code == 401 and response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers


def test_ip_allow_list_and_sender_domains() -> None:
    assert ip_allowed("10.1.2.3", ["10.1.0.0/16"]) and not ip_allowed("10.2.0.1", ["10.1.0.0/16"])
    assert ip_allowed("fd00::5", ["fd00::/8"]) and ip_allowed("1.2.3.4", [])
    assert not ip_allowed("testclient", ["10.0.0.0/8"]) and not ip_allowed(None, ["10.0.0.0/8"])
    check_sender_domain("a@corp.example.com", ["example.com"])
    check_sender_domain("a@anything.org", [])
    with pytest.raises(InvalidInputError, match=r"evil\.example\.net"):
        check_sender_domain("a@evil.example.net", ["example.com"])
    with pytest.raises(InvalidInputError):
        check_sender_domain("a@notexample.com", ["example.com"])


def test_e_mail_from_a_foreign_domain_opens_no_ticket(kb: KnowledgeBase) -> None:
    raw = mail("打印机卡纸", "三楼打印机卡纸", sender="x@spam.example.net").as_bytes()
    with pytest.raises(InvalidInputError, match=r"spam\.example\.net"):
        handle_message(kb.tickets, raw, "日常服务", ["example.com"])
    assert kb.desk.open_tickets() == []
    ok = mail("打印机卡纸", "三楼打印机卡纸", sender="wang@corp.example.com").as_bytes()
    assert handle_message(kb.tickets, ok, "日常服务", ["example.com"]).ticket_id
