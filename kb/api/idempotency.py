"""``Idempotency-Key`` for every POST (IETF draft-ietf-httpapi-idempotency-key-header): a client that retries a
POST whose answer it lost sends the same key and gets the same status and body, and nothing is done twice.

- The key is 1 to 200 visible ASCII characters (else 422 ``invalid_input``); it belongs to the caller, the
  SHA-256 of the request's credential (Bearer token or session cookie; anonymous callers such as the IM webhook
  share one caller), so two users cannot see each other's answers.
- The same key with another request (method, path, query or body differ) answers 409 ``idempotency_key_reused``;
  while the first request still runs, a retry answers 409 ``idempotency_key_in_progress``.
- Answers below 500 are stored and replayed (header ``Idempotent-Replayed: true``), except 401 and 429, which
  depend on the moment, not on the request; after a 5xx the key is released so a retry runs again.
- Keys expire after the ``idempotency_key_hours`` setting. Storage: :mod:`kb.api.idempotency_store`.
- Routes under :data:`NOT_REPLAYED` ignore the header: their answers carry credentials (session tokens, one-time
  passwords, service tokens, TOTP secrets), which must never be stored, and they cannot duplicate anything (user
  and service names are unique; a second login is a second session); the pages (``/ui/``) answer with redirects
  and are protected by their CSRF token instead.

POSTs without the header behave as before.
"""

from __future__ import annotations

import hashlib
import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.api.guard import ErrorResponse
from kb.api.idempotency_store import IdempotencyStore

HEADER = "idempotency-key"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,200}")
#: Statuses never stored: they say something about the moment (authentication, rate), not the request.
_NOT_STORED = {401, 429}
#: Path prefixes whose POSTs ignore the header (module docstring): answers with secrets, and the pages.
NOT_REPLAYED = ("/auth/", "/users", "/ui/")


class IdempotencyMiddleware:
    """ASGI middleware replaying POST answers by ``Idempotency-Key`` (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything but a POST with the header; for those, reserve the key, run once, store, replay."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(NOT_REPLAYED):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _VALID_KEY.fullmatch(key):
            await _error(422, "invalid_input", "Idempotency-Key must be 1 to 200 visible ASCII characters.")(
                scope, receive, send
            )
            return
        body = await _read_body(receive)
        caller = _caller_of(headers)
        request_hash = _hash(scope, headers, body)
        kb = scope["app"].state.kb
        store = IdempotencyStore(kb.database, kb.settings.idempotency_key_hours)
        found = await run_in_threadpool(store.reserve, caller, key, request_hash)
        if found.state == "mismatch":
            detail = "This Idempotency-Key was used for another request; use a new key for a new request."
            await _error(409, "idempotency_key_reused", detail)(scope, receive, send)
            return
        if found.state == "in_progress":
            detail = "A request with this Idempotency-Key is still running (or was interrupted); retry later."
            await _error(409, "idempotency_key_in_progress", detail)(scope, receive, send)
            return
        if found.state == "replay":
            await _replay(send, found.status, found.content_type, found.body)
            return
        await self._run_once(scope, body, send, store, caller, key)

    async def _run_once(
        self, scope: Scope, body: bytes, send: Send, store: IdempotencyStore, caller: str, key: str
    ) -> None:
        messages: list[Message] = []
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await run_in_threadpool(store.release, caller, key)
            raise
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start is not None else 500
        if status >= 500 or status in _NOT_STORED or start is None:
            await run_in_threadpool(store.release, caller, key)
        else:
            answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            content_type = Headers(raw=start.get("headers", [])).get("content-type", "")
            await run_in_threadpool(store.complete, caller, key, status, content_type, answer)
        for message in messages:
            await send(message)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _caller_of(headers: Headers) -> str:
    authorization = headers.get("authorization", "")
    cookie = next((c.strip() for c in headers.get("cookie", "").split(";") if c.strip().startswith("kb_session=")), "")
    credential = authorization or cookie or "anonymous"
    return hashlib.sha256(credential.encode("utf-8", "surrogateescape")).hexdigest()


def _hash(scope: Scope, headers: Headers, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(headers.get("content-type", "").encode("latin-1") + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _replay(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error(status: int, code: str, detail: str) -> ErrorResponse:
    return ErrorResponse({"error": code, "detail": detail}, status_code=status)
