"""Admission control for article writes: a bounded number in flight per server process, the rest shed with 429.

A write costs the serving process its parse, validation, transaction and answer, and (while it waits for the index)
a slot of the applier's batch; 40 writers posting as fast as they are answered took the interpreter from the
searches (search p95 7x slower) and made each other wait seconds (bench/results/concurrent-writes.md). So at most
``KB_WRITE_CONCURRENCY`` article writes run at once in a process, counting with them the writes this process
answered 202 whose change the applier has not applied yet (:meth:`kb.search.index.IndexManager.late_writes`: the
backlog they left; without it, writes admitted behind a backlog would wait for it, time out in turn and grow it);
one more is answered at once, before anything is read or stored:

    429 Too Many Requests, Retry-After: <KB_WRITE_RETRY_AFTER_SECONDS>
    {"error": "overloaded", "detail": "<a sentence>", "retry_after": <seconds>}

the standard load-shedding answer (RFC 6585 section 4 for 429, RFC 9110 section 10.2.3 for ``Retry-After`` in
whole seconds). Nothing is stored for a refused write, so a client retries it as it is (an ``Idempotency-Key`` is
not recorded either: :class:`kb.api.idempotency.IdempotencyMiddleware` runs inside this middleware).

Which requests are article writes (:func:`is_article_write`): ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` under
``/articles`` and ``/reviews`` (they create or change articles and so the index), except the feedback and usage
counts of an article (``/articles/{id}/feedback``, ``/articles/{id}/usage``), which touch no index; and the web
workbench's forms that do the same (``POST /ui/editor``, ``/ui/articles/{id}/status``, ``/ui/proposals/...``),
which are refused with the same status and header and a short HTML page instead of JSON. Searches, reads, the
editor's preview and every other route are never refused here.

An admitted write's wait for the index (``KB_INDEX_WAIT_SECONDS``, :mod:`kb.search.handoff`) counts from its
arrival here, so queueing, parsing and storing come out of the same budget.

The count is kept on the event loop (an ASGI middleware; no lock: the loop runs one coroutine at a time) and is per
process (``kb serve --workers N`` admits N times as many).
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.search.handoff import ARRIVED

#: Methods that change what they name.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Path prefixes whose writes create or change articles.
WRITE_PREFIXES = ("/articles", "/reviews")
#: Last path segments under those prefixes that record counts only (no article change, no index work).
COUNT_ONLY = ("/feedback", "/usage")


def _is_web_article_write(method: str, path: str) -> bool:
    """Whether a workbench form request creates or changes an article (kb/web/routes/editor.py: the editor's save,
    a status change, a proposal's acceptance or rejection; ``/ui/editor/preview`` renders without storing)."""
    if method != "POST":
        return False
    if path.rstrip("/") == "/ui/editor" or path.startswith("/ui/proposals/"):
        return True
    return path.startswith("/ui/articles/") and path.rstrip("/").endswith("/status")


def is_article_write(method: str, path: str) -> bool:
    """Whether a request creates or changes an article, through the API or the workbench (module docstring)."""
    if method not in WRITE_METHODS:
        return False
    if path.startswith("/ui/"):
        return _is_web_article_write(method, path)
    if not any(path == p or path.startswith(p + "/") for p in WRITE_PREFIXES):
        return False
    return not path.rstrip("/").endswith(COUNT_ONLY)


class WriteAdmission:
    """ASGI middleware that admits at most ``limit`` article writes at once (module docstring).

    Args:
        app: the application.
        limit: article writes in flight at most (>= 1).
        retry_after_s: the ``Retry-After`` of a refusal, whole seconds (>= 1).

    Attributes:
        in_flight: article writes running now.
        refused: article writes answered 429 since start.
    """

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int = 1) -> None:
        if limit < 1 or retry_after_s < 1:
            raise ValueError("limit and retry_after_s must be at least 1")
        self.app = app
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.refused = 0
        sentence = (
            f"The server is handling as many article writes as it can ({limit} at once); nothing was saved. "
            f"Send the same request again in {retry_after_s} s."
        )
        self._body = json.dumps(
            {"error": "overloaded", "detail": sentence, "retry_after": retry_after_s}, ensure_ascii=False
        ).encode("utf-8")
        self._page = (
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>服务器繁忙</title>'
            f"<p>服务器正在处理的文章写入已达上限（同时 {limit} 个），本次没有保存任何内容。"
            f"请在 {retry_after_s} 秒后返回上一页重新提交。</p></html>"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_article_write(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit or self.in_flight + _late_writes(scope) >= self.limit:
            self.refused += 1
            await self._refuse(send, web=scope["path"].startswith("/ui/"))
            return
        self.in_flight += 1
        token = ARRIVED.set(time.monotonic())  # the write's wait for the index counts from here (kb.search.handoff)
        try:
            await self.app(scope, receive, send)
        finally:
            ARRIVED.reset(token)
            self.in_flight -= 1

    async def _refuse(self, send: Send, web: bool = False) -> None:
        body, kind = (self._page, b"text/html; charset=utf-8") if web else (self._body, b"application/json")
        start: Message = {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(self.retry_after_s).encode()),
            ],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _late_writes(scope: Scope) -> int:
    """The app's knowledge base's writes answered 202 and not applied yet (0 before startup)."""
    kb = getattr(getattr(scope.get("app"), "state", None), "kb", None)
    return int(kb.index.late_writes()) if kb is not None else 0
