"""Idempotency-Key on POST (issue 10): a retried POST gets the same answer and makes no second row."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.types import Message

from kb.api.guard import MAX_JSON_BODY_BYTES
from kb.models import Article, Feedback, IdempotencyKey, Ticket
from tests.helpers import NO_LICENSES, TEST_PASSWORD, create, kb_of, login, new_user, sysadmin

TICKET = {"title": "打印机脱机", "description": "三楼打印机脱机", "service": "日常服务"}


def _count(client: TestClient, model: type) -> int:
    with kb_of(client).database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_same_key_same_answer_and_no_second_row(client: TestClient) -> None:
    first = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k-1"})
    again = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert _count(client, Ticket) == 1
    article = {"body": "# 打印机脱机\n重启打印服务。"}
    made = [client.post("/articles", json=article, headers={"Idempotency-Key": "a-1"}) for _ in range(3)]
    assert {r.status_code for r in made} == {201} and len({r.text for r in made}) == 1
    assert _count(client, Article) == 1
    other = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 201 and _count(client, Ticket) == 2  # a new key is a new request


def test_same_key_other_body_is_409_and_changes_nothing(client: TestClient) -> None:
    assert client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k-1"}).status_code == 201
    reused = client.post("/tickets", json={**TICKET, "title": "网络中断"}, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409 and reused.json()["error"] == "idempotency_key_reused"
    elsewhere = client.post("/articles", json={"body": "# 标题\n正文"}, headers={"Idempotency-Key": "k-1"})
    assert elsewhere.status_code == 409
    assert _count(client, Ticket) == 1 and _count(client, Article) == 0


def test_a_4xx_is_replayed_and_a_bad_key_is_422(client: TestClient) -> None:
    bad = client.post("/tickets", json={"title": "x", "service": "没有这个服务"}, headers={"Idempotency-Key": "b"})
    assert bad.status_code == 422
    assert (
        client.post("/tickets", json={"title": "x", "service": "没有这个服务"}, headers={"Idempotency-Key": "b"}).json()
        == bad.json()
    )
    for key in ("", "x" * 201, "a b", "含中文".encode().decode("latin-1")):
        answer = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": key.encode("latin-1")})
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_input"
    assert _count(client, Ticket) == 0


def test_keys_belong_to_the_caller_and_expire(client: TestClient) -> None:
    assert client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k"}).status_code == 201
    token = client.headers.pop("Authorization")
    login(client)  # a new session is another caller: its key "k" is its own
    assert client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k"}).status_code == 201
    assert _count(client, Ticket) == 2 and token != client.headers["Authorization"]
    with kb_of(client).database.session() as session:
        for row in session.scalars(select(IdempotencyKey)):
            row.expires_at = row.created_at  # as if idempotency_key_hours had passed
    assert client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k"}).status_code == 201
    assert _count(client, Ticket) == 3
    assert _count(client, IdempotencyKey) == 1  # the expired keys were deleted


@pytest.mark.security
def test_answers_with_credentials_are_never_stored(client: TestClient) -> None:
    """Logins, new users (one-time password) and service tokens ignore the header: no key row holds a secret, and
    a retry runs again (a second session; 409 for the name already taken)."""
    admin = sysadmin(client)
    made = admin.post("/users", json={"username": "li.si", "roles": ["agent"]}, headers={"Idempotency-Key": "u-1"})
    assert made.status_code == 201, made.text
    again = admin.post("/users", json={"username": "li.si", "roles": ["agent"]}, headers={"Idempotency-Key": "u-1"})
    assert again.status_code == 409 and "Idempotent-Replayed" not in again.headers
    service = admin.post(
        "/users/services", json={"name": "itsm", "scopes": ["suggest"]}, headers={"Idempotency-Key": "s-1"}
    )
    assert service.status_code == 201, service.text
    with kb_of(client).database.session() as session:
        stored = [row.body or b"" for row in session.scalars(select(IdempotencyKey))]
    secrets = (made.json()["one_time_password"], service.json()["token"])
    assert not any(secret.encode() in body for body in stored for secret in secrets)
    assert _count(client, IdempotencyKey) == 0


def test_two_requests_racing_with_one_key_make_one_row(client: TestClient) -> None:
    """Both may pass the lookup before either commits: the key's row is written in the use case's transaction, so
    the second one's transaction fails on it, is rolled back, and is answered from the first's row."""
    answers: list[tuple[int, str]] = []

    def post() -> None:
        answer = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "race"})
        answers.append((answer.status_code, answer.json().get("error", "")))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 4 and (201, "") in answers, answers
    assert set(answers) <= {(201, ""), (409, "idempotency_key_in_progress")}, answers
    assert _count(client, Ticket) == 1 and _count(client, IdempotencyKey) == 1


@pytest.mark.security
def test_nothing_is_replayed_to_a_credential_that_is_no_longer_live(client: TestClient) -> None:
    """Session 8's outside tester: a stored answer was replayed after logout and after the user was disabled (the
    ticket, an unmasked phone number in it), and a key in use answered 409 to anyone, an oracle of which keys
    exist. Now only a live credential is answered from a key; a dead one gets the route's 401."""
    made = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k9"})
    assert made.status_code == 201
    token = client.headers["Authorization"]
    assert client.post("/auth/logout").status_code in (200, 204)
    for body in (TICKET, {**TICKET, "title": "别的请求"}):  # replay, and the 409 of a reused key
        after = client.post("/tickets", json=body, headers={"Idempotency-Key": "k9", "Authorization": token})
        assert after.status_code == 401, after.text
        assert "Idempotent-Replayed" not in after.headers and "打印机" not in after.text
    anonymous = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k9", "Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["error"] != "idempotency_key_reused"
    assert _count(client, Ticket) == 1


@pytest.mark.security
def test_a_disabled_user_gets_no_replay(client: TestClient) -> None:
    kb = kb_of(client)
    kb.accounts.create("zhao.liu", ["agent"], "tests", password=TEST_PASSWORD, must_change=False)
    login(client, "zhao.liu")
    assert client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "d1"}).status_code == 201
    kb.accounts.set_active("zhao.liu", False)
    again = client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "d1"})
    assert again.status_code == 401 and "Idempotent-Replayed" not in again.headers


def _cookie_only(client: TestClient, name: str) -> TestClient:
    """A client of ``name`` (a new requester) that sends its session as the ``kb_session`` cookie only."""
    other = new_user(client, name, ["requester"])
    other.headers.pop("Authorization")
    return other


@pytest.mark.security
def test_a_key_belongs_to_the_credential_that_authenticated_the_request(client: TestClient) -> None:
    """Found by session 9's outside tester: the key's owner was the raw Authorization header, so with the session
    in the cookie and ``Authorization: Bearer`` (empty) or ``Authorization: Basic ...`` beside it, which the
    authentication ignores, every user had the same owner: req2 got req1's ticket and feedback answers (with
    req1's private comment) and nothing of req2's was recorded. Now the owner is the credential that
    authenticated the request, whatever other headers say."""
    article = create(client, NO_LICENSES, visibility="public", status="published")
    req1, req2 = _cookie_only(client, "req1"), _cookie_only(client, "req2")
    for n, ignored in enumerate(("Bearer", "Basic Zm9vOmJhcg==", "Bearer  ")):
        headers = {"Authorization": ignored, "Idempotency-Key": f"shared-{n}"}
        first = req1.post("/tickets", json=TICKET, headers=headers)
        second = req2.post("/tickets", json=TICKET, headers=headers)
        assert first.status_code == second.status_code == 201, second.text
        assert "Idempotent-Replayed" not in second.headers
        assert first.json()["ticket"]["requester"] == "req1" and second.json()["ticket"]["requester"] == "req2"
        assert first.json()["ticket"]["id"] != second.json()["ticket"]["id"]
    vote = {"helpful": True, "comment": "my private comment"}
    headers = {"Authorization": "Bearer", "Idempotency-Key": "fb-key-7"}
    assert req1.post(f"/articles/{article['id']}/feedback", json=vote, headers=headers).status_code == 201
    theirs = req2.post(f"/articles/{article['id']}/feedback", json=vote, headers=headers)
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert "req1" not in theirs.text
    with kb_of(client).database.session() as session:
        voters = set(session.scalars(select(Feedback.actor).where(Feedback.article_id == article["id"])))
    assert voters == {"req1", "req2"}
    again = req1.post("/tickets", json=TICKET, headers={"Authorization": "Basic eDp5", "Idempotency-Key": "shared-0"})
    assert again.headers.get("Idempotent-Replayed") == "true"  # the same credential is still the same caller
    assert again.json()["ticket"]["requester"] == "req1"


def _stream(client: TestClient, path: str, headers: dict[str, str], total: int) -> tuple[int, str, int]:
    """POST ``total`` bytes of JSON white space to ``path`` of the client's running app, in 1 MiB pieces as a
    chunked upload arrives (the TestClient reads a body whole before the app sees it); answers the status, the
    ``error`` code and how many bytes the app asked for."""
    piece, pulled = 1 << 20, 0
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.disconnect"}
        pulled += piece
        return {"type": "http.request", "body": b" " * piece, "more_body": pulled < total}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 443), "state": {},
    }  # fmt: skip
    client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
    status = next(int(m["status"]) for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body).get("error", "") if body else "", pulled


@pytest.mark.security
def test_an_idempotency_key_keeps_the_body_limit(client: TestClient) -> None:
    """Found by session 9's outside tester: with an Idempotency-Key the middleware read the whole body (60 MB)
    into memory before the route's 4 MiB limit answered 413. Now it reads with the route guard's limit and stops
    there, with the same 413 answer; a declared length over the limit is refused before anything is read."""
    bearer = {"Authorization": client.headers["Authorization"], "Content-Type": "application/json"}
    limit, total = MAX_JSON_BODY_BYTES, 60 * (1 << 20)
    for headers in (bearer, {**bearer, "Idempotency-Key": "big-1"}):
        status, error, pulled = _stream(client, "/tickets", headers, total)
        assert (status, error) == (413, "payload_too_large")
        assert pulled <= limit + (1 << 20), pulled  # stopped at the limit, not at 60 MB
    declared = {**bearer, "Idempotency-Key": "big-2", "Content-Length": str(total)}
    assert _stream(client, "/tickets", declared, total) == (413, "payload_too_large", 0)
    assert _count(client, Ticket) == 0 and _count(client, IdempotencyKey) == 0
    fits = client.post("/tickets", json={**TICKET, "description": "x" * 15_000}, headers={"Idempotency-Key": "ok"})
    assert fits.status_code == 201, fits.text
