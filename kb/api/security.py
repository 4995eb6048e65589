"""Security headers on every response (入侵防范, GB/T 22239-2019 7.1.4.4), as a pure ASGI middleware.

The Content-Security-Policy allows scripts, styles and images from the service itself only (no inline script,
no ``eval``), forbids framing (``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for old browsers),
``X-Content-Type-Options: nosniff`` stops MIME sniffing and ``Referrer-Policy: no-referrer`` keeps ticket URLs out
of other sites' logs (OWASP Secure Headers Project). ``Cache-Control: no-store`` is the default of every answer
that does not set its own, so no browser or proxy keeps a copy of what a logged-in user was shown (OWASP ASVS 4.0
8.2.1; static files and article images set their own). In production ``Strict-Transport-Security`` (one year) is
added. The interactive API docs of development (``/docs``, ``/redoc``: inline script from a CDN) get no CSP;
production serves no docs at all.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
#: Added when a response sets no Cache-Control of its own.
NO_STORE = (b"cache-control", b"no-store")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
#: Paths of the development API docs, which need inline script.
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Adds :data:`HEADERS`, :data:`NO_STORE` and the :data:`CSP` (and :data:`HSTS` when ``production``) to every
    HTTP response, each only where the response has not set that header itself."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = not self.production and str(scope.get("path", "")).startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*HEADERS, NO_STORE] + ([] if docs else [(b"content-security-policy", CSP.encode())])
                extra += [HSTS] if self.production else []
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
