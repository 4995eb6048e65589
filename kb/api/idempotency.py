"""``Idempotency-Key`` for every POST (IETF draft-ietf-httpapi-idempotency-key-header): a client that retries a
POST whose answer it lost sends the same key and gets the same status and body, and nothing is done twice.

- The key is 1 to 200 visible ASCII characters (else 422 ``invalid_input``); it belongs to the caller, the
  SHA-256 of the credential that authenticates the request (:func:`kb.api.deps.credential_scope`: the token
  :func:`kb.api.deps.authenticate` resolves, a Bearer token or else the session cookie), so two users cannot see
  each other's answers. (Session 9's outside tester: the scope was the raw ``Authorization`` header, which an
  ``Authorization: Basic ...`` or empty ``Bearer`` beside the cookie made the same for every user, and req2 got
  req1's answers.)
- The body is read before the route (its hash is part of the request) with the route guard's limit
  (:func:`kb.api.guard.read_bounded`: 413 ``payload_too_large`` once past 4 MiB, nothing more read).
- Only a caller whose credential is live *now* is answered from a key (a session not ended or expired, of an
  active user; a service token not revoked): a stored answer is data the route showed that caller, so after
  logout, disabling or revocation the request goes to the route, which answers 401 like any other. Anonymous
  requests (the IM webhook, which authenticates by signature inside its route, and deduplicates by message id)
  ignore the header: nothing is replayed before a route has checked who is asking, and answering 409 for a key
  in use would tell an outsider which keys exist (session 8's outside tester).
- The same key with another request (method, path, query or body differ) answers 409 ``idempotency_key_reused``;
  while the first request's answer is not stored yet, a retry answers 409 ``idempotency_key_in_progress``.
- The key is written in the use case's own transaction (:mod:`kb.api.idempotency_store`), so a process killed
  before the change commits leaves no key behind and the retry runs; of two requests racing with one key, one
  commits and the other is answered from its row.
- Answers are stored and replayed (header ``Idempotent-Replayed: true``). A request that changed nothing stores
  its answer unless it is a 5xx (a retry runs again), 401 or 429 (they depend on the moment, not on the
  request); a request whose change committed stores whatever it answered, a 500 included, since running it again
  would do it twice.
- Keys expire after the ``idempotency_key_hours`` setting. Storage: :mod:`kb.api.idempotency_store`.
- Routes under :data:`NOT_REPLAYED` ignore the header: their answers carry credentials (session tokens, one-time
  passwords, service tokens, TOTP secrets), which must never be stored, and they cannot duplicate anything (user
  and service names are unique; a second login is a second session); the pages (``/ui/``) answer with redirects
  and are protected by their CSRF token instead. The routes that stream a raw body of their own size
  (:data:`kb.api.guard.STREAMED_BODY_PATHS`: ticket exports up to 200 MiB) ignore it too: the middleware would
  have to hold the body before the route checks who may send it, and an export's rows carry their own ids
  (``source`` + ``external_id``), so a retried import finds them and makes none twice.

POSTs without the header behave as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.api.deps import credential_scope
from kb.api.guard import STREAMED_BODY_PATHS, ErrorResponse, read_bounded
from kb.api.idempotency_store import CLAIM, Claim, IdempotencyStore, Reservation, watch
from kb.errors import PayloadTooLargeError

HEADER = "idempotency-key"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,200}")
#: Statuses never stored: they say something about the moment (authentication, rate), not the request.
_NOT_STORED = {401, 429}
#: Path prefixes whose POSTs ignore the header (module docstring): answers with secrets, and the pages.
NOT_REPLAYED = ("/auth/", "/users", "/ui/", *STREAMED_BODY_PATHS)


class IdempotencyMiddleware:
    """ASGI middleware replaying POST answers by ``Idempotency-Key`` (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything but a POST with the header; for those, answer from the key's row or run once under a
        claim (the key is written in the use case's transaction, :mod:`kb.api.idempotency_store`) and store."""
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
        kb = scope["app"].state.kb
        caller = await run_in_threadpool(credential_scope, Request(scope))
        if caller is None:
            await self.app(scope, receive, send)  # the route answers (401 for a dead credential)
            return
        try:
            body = await read_bounded(_pieces(receive), headers.get("content-length"))
        except PayloadTooLargeError as exc:
            await _error(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        watch(kb.database)
        store = IdempotencyStore(kb.database, kb.settings.idempotency_key_hours)
        request_hash = _hash(scope, headers, body)
        found = await run_in_threadpool(store.lookup, caller, key, request_hash)
        if found is not None:
            await _answer(found, scope, receive, send)
            return
        await self._run_once(scope, body, send, store, store.claim(caller, key, request_hash))

    async def _run_once(self, scope: Scope, body: bytes, send: Send, store: IdempotencyStore, claim: Claim) -> None:
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

        token = CLAIM.set(claim)
        failed: Exception | None = None
        try:
            await self.app(scope, replay_body, capture)
        except Exception as exc:
            failed = exc
        finally:
            CLAIM.reset(token)
        if failed is not None:
            if claim.committed:  # done but not answered: the retry gets the 500 (with its request id), not a rerun
                request_id = scope.get("state", {}).get("request_id", "-")
                detail = f"An unexpected error occurred; it is logged with request id {request_id}."
                error = {"error": "internal_error", "detail": detail, "request_id": request_id}
                await run_in_threadpool(store.complete, claim, 500, "application/json", json.dumps(error).encode())
            elif (other := await _other(store, claim)) is not None:  # lost the race for the key: rolled back
                await _answer(other, scope, replay_body, send)
                return
            raise failed
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start is not None else 500
        answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        content_type = Headers(raw=start.get("headers", []) if start else []).get("content-type", "")
        if claim.committed:
            await run_in_threadpool(store.complete, claim, status, content_type, answer)
        elif (other := await _other(store, claim)) is not None:
            await _answer(other, scope, replay_body, send)
            return
        elif status < 500 and status not in _NOT_STORED:
            await run_in_threadpool(store.store, claim, status, content_type, answer)
        for message in messages:
            await send(message)


async def _other(store: IdempotencyStore, claim: Claim) -> Reservation | None:
    """The row another request with the claim's key wrote meanwhile (this request's transaction then failed on the
    key and was rolled back), or None."""
    return await run_in_threadpool(store.lookup, claim.caller, claim.key, claim.request_hash)


async def _answer(found: Reservation, scope: Scope, receive: Receive, send: Send) -> None:
    if found.state == "mismatch":
        detail = "This Idempotency-Key was used for another request; use a new key for a new request."
        await _error(409, "idempotency_key_reused", detail)(scope, receive, send)
    elif found.state == "in_progress":
        detail = "A request with this Idempotency-Key is still running; retry later."
        await _error(409, "idempotency_key_in_progress", detail)(scope, receive, send)
    else:
        await _replay(send, found.status, found.content_type, found.body)


async def _pieces(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's pieces from the ASGI ``receive`` channel, until the last one or a disconnect."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


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
