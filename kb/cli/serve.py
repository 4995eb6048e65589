"""``kb serve``: the HTTP API (and, with ``KB_SMTP_PORT``, the e-mail intake)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kb.config import Settings


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    sv = sub.add_parser("serve", help="serve the HTTP API")
    sv.add_argument("--host", help="bind address (default KB_HOST or 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default KB_PORT or 8000)")
    sv.add_argument(
        "--import",
        dest="import_paths",
        action="append",
        type=Path,
        default=[],
        help="import these Markdown folders before serving (unchanged files cost nothing)",
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from kb.service import KnowledgeBase
    from kb.web.app import create_app  # the API and the pages

    host = args.host or settings.host
    port = args.port or settings.port
    kb = KnowledgeBase(settings)
    first = kb.accounts.ensure_admin()
    if first is not None:
        print(
            f"first start: created user admin (sysadmin) with the one-time password {first.password}\n"
            f"  and the TOTP secret {first.totp_uri}\n"
            "  (both shown once: add the otpauth URI to an authenticator app, log in at POST /auth/login with "
            '"totp", then change the password with POST /auth/password)',
            flush=True,
        )
    if args.import_paths:
        kb.open()
        report = kb.writer.import_paths(args.import_paths, settings.dev_user)
        print(
            f"imported {', '.join(str(p) for p in args.import_paths)}: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {len(report.errors)} errors",
            flush=True,
        )
    if settings.smtp_port:
        from kb.desk.channels.email import SmtpIntake

        smtp_host, smtp_port = SmtpIntake(
            kb.tickets, settings.intake_default_service, host, settings.smtp_port, settings.email_sender_domains
        ).start()
        print(f"e-mail intake (SMTP) on {smtp_host}:{smtp_port}", flush=True)
    example = f"http://{host}:{port}/?q={quote('远程桌面 没有可用的许可证')}"
    print(f"kb serving on http://{host}:{port}  (try {example})", flush=True)
    # proxy_headers=False: X-Forwarded-For is never trusted (uvicorn trusts it from 127.0.0.1 by default), so the
    # login rate limit, the audit trail's source IP and the admin networks see the real peer (kb.api.deps.client_ip).
    uvicorn.run(create_app(settings, kb=kb), host=host, port=port, log_level="info", proxy_headers=False)
    return 0
