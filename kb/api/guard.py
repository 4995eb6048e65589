"""The API's edge: request bodies are bounded and checked before a route sees them, and every exception that
reaches the app becomes the JSON error shape ``{"error": code, "detail": sentence}``.

- :class:`GuardedRoute` (the ``route_class`` of every router): a JSON body is read up to
  :data:`MAX_JSON_BODY_BYTES` (413 ``payload_too_large`` beyond, without reading the rest), parsed once
  (nesting too deep for the parser: 422) and refused with 422 when it holds a lone surrogate (``"\\ud800"``), which no
  database or UTF-8 encoder can store, or a NUL character (``\\u0000``; PostgreSQL text cannot hold it; the
  path and query are checked for NUL on every route). :func:`read_bounded` is that one limit, shared with the
  ``Idempotency-Key`` middleware, which reads a body before the route does (:mod:`kb.api.idempotency`). Routes
  that read a raw body (:data:`STREAMED_BODY_PATHS`) have no body field and stream it themselves, to their own
  limit.
- :class:`ErrorBoundary` (outermost ASGI middleware): gives each request an id (``X-Request-ID`` answer header);
  an unexpected exception is logged with that id and answered 500 ``internal_error`` naming it, never a
  traceback or a reset connection.
- :class:`ErrorResponse`: JSON that never fails to encode (lone surrogates in a message become U+FFFD).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import InvalidInputError, PayloadTooLargeError

logger = logging.getLogger(__name__)

#: Largest JSON request body, in bytes: an article body of 300,000 characters written as ``\\uXXXX`` escapes
#: fits; an IM message or ticket bigger than this is refused with 413 before it is read further.
MAX_JSON_BODY_BYTES = 4 * 1024 * 1024

#: Paths of the routes that stream a raw request body to a limit of their own (``POST /ingest/tickets``, a ticket
#: export of up to 200 MiB written to a temporary file as it arrives), instead of taking a JSON body.
STREAMED_BODY_PATHS = ("/ingest/tickets",)

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class ErrorResponse(JSONResponse):
    """A JSON error that always encodes: text that cannot be UTF-8 (lone surrogates) is replaced, not raised."""

    def render(self, content: Any) -> bytes:
        """``content`` as compact UTF-8 JSON; unencodable characters become U+FFFD."""
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def request_id_of(request: Request) -> str:
    """The id :class:`ErrorBoundary` gave this request (``-`` outside it)."""
    return str(request.scope.get("state", {}).get("request_id", "-"))


class GuardedRoute(APIRoute):
    """An APIRoute whose JSON body is bounded, parsed once and checked for lone surrogates (module docstring).

    A subclass that sets :attr:`clean` (the intake routes, with :func:`kb.ingest.intake_text.clean_strings`) has the
    strings of its parsed body cleaned by it instead of refused for NUL or lone surrogates."""

    clean: ClassVar[Callable[[Any], Any] | None] = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The FastAPI handler, preceded by the body checks when the route takes a body."""
        handler = super().get_route_handler()
        takes_body = self.body_field is not None
        clean = type(self).clean

        async def guarded(request: Request) -> Response:
            _check_no_nul(request)
            if takes_body:
                await _checked_body(request, clean)
            return await handler(request)

        return guarded


def _check_no_nul(request: Request) -> None:
    """422 for a NUL character in the path or query: no database column stores it (PostgreSQL refuses it)."""
    if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        raise InvalidInputError("The request's path or query holds a NUL character (\\x00), which is not text.")


async def read_bounded(chunks: AsyncIterator[bytes], declared: str | None) -> bytes:
    """The request body from its ``chunks``, read to at most :data:`MAX_JSON_BODY_BYTES` bytes: the one body limit
    of the JSON routes and of the ``Idempotency-Key`` middleware (found by session 9's outside tester: with the
    header, a 60 MB body was read whole before the route's 413).

    Args:
        chunks: the body's pieces as they arrive (``request.stream()``, or the ASGI ``receive`` messages).
        declared: the ``Content-Length`` header, if any.

    Raises:
        PayloadTooLargeError: the declared length is over the limit (nothing is read), or the bytes read pass it
            (nothing more is read, and no more than the limit and one piece is held).
    """
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
        raise PayloadTooLargeError(f"The request body is limited to {MAX_JSON_BODY_BYTES} bytes.")
    pieces: list[bytes] = []
    size = 0
    async for piece in chunks:
        size += len(piece)
        if size > MAX_JSON_BODY_BYTES:
            raise PayloadTooLargeError(f"The request body is limited to {MAX_JSON_BODY_BYTES} bytes.")
        pieces.append(piece)
    return b"".join(pieces)


async def _checked_body(request: Request, clean: Callable[[Any], Any] | None) -> None:
    body = await read_bounded(request.stream(), request.headers.get("content-length"))
    request._body = body  # Starlette's cache of the body: FastAPI reads it from there
    if not body:
        return
    try:
        parsed = json.loads(body)
    except RecursionError as exc:
        raise InvalidInputError("The JSON body nests too deeply.") from exc
    except ValueError:
        return  # FastAPI answers 422 json_invalid with the position
    if clean is not None:
        request._json = clean(parsed)  # FastAPI validates the cleaned body
        return
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(parsed):
        raise InvalidInputError("The JSON body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text.")
    if b"\\u0000" in body and _holds_nul(parsed):
        raise InvalidInputError("The JSON body holds a NUL character (\\u0000), which is not text; remove it.")
    request._json = parsed  # Starlette's cache of the parsed body: parsed once


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ErrorBoundary:
    """Outermost ASGI middleware: a request id for each request, and a JSON 500 for any unexpected exception."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an exception before the answer started, log it with the request id and answer 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("internal error in %s %s (request id %s)", scope["method"], scope["path"], request_id)
            if started:
                raise
            answer = ErrorResponse(
                {
                    "error": "internal_error",
                    "detail": f"An unexpected error occurred; it is logged with request id {request_id}.",
                    "request_id": request_id,
                },
                status_code=500,
            )
            await answer(scope, receive, send_with_id)
