"""TOTP seeds sealed at rest with KB_DATA_KEY (kb.identity.data_key), SQLite and PostgreSQL: the column never holds
the base32 seed, a wrong key is a clear 503 (not a 500, and not the caller's failed login), a rotation reseals
every seed with the new key, and seeds stored before sealing are sealed at the next start."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, text

from kb.api import create_app
from kb.config import DEVELOPMENT_DATA_KEY, Settings
from kb.errors import DataKeyError
from kb.identity.data_key import DataKey
from kb.models import LoginThrottle, User
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"


def _stored(kb: KnowledgeBase, username: str) -> str:
    """The ``users.totp_secret`` column as the database holds it (plain SQL, no ORM)."""
    with kb.database.engine.connect() as connection:
        value = connection.execute(text("SELECT totp_secret FROM users WHERE username = :u"), {"u": username})
        return str(value.scalar_one())


@pytest.fixture
def opened() -> Iterator[list[KnowledgeBase]]:
    """The extra services a test starts; their database pools are closed at the end (an engine left to the
    garbage collector closes PostgreSQL connections in a ResourceWarning during some later test)."""
    services: list[KnowledgeBase] = []
    yield services
    for service in services:
        service.database.dispose()


def _with_key(
    settings: Settings, key: str, analyzer: TextAnalyzer, embedder: HashingEmbedder, opened: list[KnowledgeBase]
) -> KnowledgeBase:
    service = KnowledgeBase(settings.model_copy(update={"data_key": key}), embedder=embedder, analyzer=analyzer)
    opened.append(service)
    return service


def test_the_column_never_holds_the_seed_and_login_still_works(kb: KnowledgeBase) -> None:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    seed = pyotp.parse_uri(kb.accounts.enrol_totp("zhang.san")).secret
    stored = _stored(kb, "zhang.san")
    assert seed not in stored and stored.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    assert kb.accounts.data_key.open(stored) == seed
    assert kb.sessions.login("zhang.san", GOOD, totp=pyotp.TOTP(seed).now()).token
    kb.accounts.enrol_totp("zhang.san")  # a new enrolment is sealed too
    assert _stored(kb, "zhang.san").startswith("gAAAAA") and _stored(kb, "zhang.san") != stored


def test_a_wrong_key_is_a_clear_503_audited_and_not_a_failed_login(
    kb: KnowledgeBase,
    settings: Settings,
    analyzer: TextAnalyzer,
    hash_embedder: HashingEmbedder,
    opened: list[KnowledgeBase],
) -> None:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    seed = pyotp.parse_uri(kb.accounts.enrol_totp("zhang.san")).secret
    stranger = _with_key(settings, Fernet.generate_key().decode(), analyzer, hash_embedder, opened)  # the old key lost
    with pytest.raises(DataKeyError, match="KB_DATA_KEY"):
        stranger.sessions.login("zhang.san", GOOD, totp=pyotp.TOTP(seed).now())
    with TestClient(create_app(stranger.settings, kb=stranger), base_url="https://testserver") as client:
        answer = client.post("/auth/login", json={"username": "zhang.san", "password": GOOD, "totp": "123456"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "data_key_mismatch" and "KB_DATA_KEY" in answer.json()["detail"]
        wrong = client.post("/auth/login", json={"username": "zhang.san", "password": "Not-the-one-1"})
        assert wrong.status_code == 401  # a wrong password still says only that
    with stranger.database.session() as session:
        assert session.get(LoginThrottle, "zhang.san") is not None  # the wrong password counted ...
        assert session.get(LoginThrottle, "zhang.san").failures == 1  # ... the key faults did not
    _, rows = stranger.audit.query(event="login")
    assert [r.reason for r in rows].count("totp seed cannot be opened with KB_DATA_KEY") == 2
    assert _stored(stranger, "zhang.san") == _stored(kb, "zhang.san")  # the seed was left as it was
    stranger.database.dispose()


def test_rotation_reseals_every_seed_with_the_new_key(
    kb: KnowledgeBase,
    settings: Settings,
    analyzer: TextAnalyzer,
    hash_embedder: HashingEmbedder,
    opened: list[KnowledgeBase],
) -> None:
    old, new = settings.data_key, Fernet.generate_key().decode()
    seeds = {}
    for name in ("zhang.san", "li.si"):
        kb.accounts.create(name, ["agent"], "admin", password=GOOD, must_change=False)
        seeds[name] = pyotp.parse_uri(kb.accounts.enrol_totp(name)).secret
    rotated = _with_key(
        settings, f"{new},{old}", analyzer, hash_embedder, opened
    )  # at start: resealed with the new key
    for name, seed in seeds.items():
        assert DataKey([new]).open(_stored(rotated, name)) == seed
    _, rows = rotated.audit.query(event="totp.reseal")
    assert len(rows) == 1 and rows[0].reason == "2 seeds"
    assert rotated.accounts.reseal_totp_secrets().resealed == ()  # nothing left to do
    only_new = _with_key(settings, new, analyzer, hash_embedder, opened)  # the old key may now be dropped
    assert only_new.sessions.login("li.si", GOOD, totp=pyotp.TOTP(seeds["li.si"]).now()).token
    assert only_new.accounts.reseal_totp_secrets().unreadable == ()
    with pytest.raises(DataKeyError):
        DataKey([old]).open(_stored(only_new, "li.si"))
    for service in (rotated, only_new):
        service.database.dispose()


def test_seeds_stored_before_sealing_are_sealed_at_start(
    kb: KnowledgeBase,
    settings: Settings,
    analyzer: TextAnalyzer,
    hash_embedder: HashingEmbedder,
    opened: list[KnowledgeBase],
) -> None:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    bare = pyotp.random_base32()
    with kb.database.session() as session:  # as session 4 stored it
        user = session.scalar(select(User).where(User.username == "zhang.san"))
        assert user is not None
        user.totp_secret = bare
    assert kb.sessions.login("zhang.san", GOOD, totp=pyotp.TOTP(bare).now()).token  # still readable ...
    assert _stored(kb, "zhang.san").startswith("gAAAAA")  # ... and sealed by that login
    with kb.database.session() as session:
        user = session.scalar(select(User).where(User.username == "zhang.san"))
        assert user is not None
        user.totp_secret, user.totp_last_step = bare, None
    restarted = _with_key(settings, settings.data_key, analyzer, hash_embedder, opened)
    assert restarted.accounts.data_key.open(_stored(restarted, "zhang.san")) == bare
    restarted.database.dispose()


def test_the_setting_takes_only_fernet_keys() -> None:
    for bad in ("", "not-a-key", "a2ItZGV2ZWxvcG1lbnQ=", f"{DEVELOPMENT_DATA_KEY},short"):
        with pytest.raises(ValidationError, match="data_key"):
            Settings(data_key=bad)
    assert Settings(data_key=f" {Fernet.generate_key().decode()} , {DEVELOPMENT_DATA_KEY} ").data_key
