"""``kb serve``: the HTTP API (and, with ``KB_SMTP_PORT``, the e-mail intake).

``--workers N`` (N > 1) serves from N processes (uvicorn's supervisor: one listening socket, a worker that dies
is replaced). Each worker builds its own :class:`~kb.service.KnowledgeBase` from the same ``KB_*`` environment
(:func:`worker_app`) and opens the one shared index folder: every worker searches it, a write through any worker
is applied by that worker under ``writer.lock`` before it answers, the other workers see it at their next search
(one ``stat`` of the manifest, then :meth:`kb.search.generation.Generation.catch_up`), and the background jobs
(outbox applier, SLA clock) run in the one worker holding ``applier.lock``
(:meth:`kb.service.KnowledgeBase.start_background_applier`). Unless ``KB_EMBEDDING_THREADS`` is set, each worker's
ONNX Runtime runs cores / N intra-op threads (:func:`worker_threads`), so the workers do not all spread each query
encoding over every core. The first-start admin, ``--import`` and the e-mail
intake run in the parent process.

With ``KB_INDEX_APPLIER=process`` (the default) the outbox is applied by a process of its own instead
(:mod:`kb.cli.applier`: it holds ``applier.lock`` and runs the background jobs, at a lower CPU priority), started by
the parent before it serves and stopped after; every serving process (one, or each of ``--workers N``) only follows
the index it writes, and a write waits for its own process to have followed it (201), else answers 202.

Once warm (knowledge base open, background jobs started), every serving process and the applier process freezes
the objects alive then out of the cycle collector's passes (``KB_GC_FREEZE``, :func:`kb.runtime.freeze_after_warmup`).
"""

from __future__ import annotations

import argparse
import os
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
    sv.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("KB_WORKERS", "1")),
        help="server processes sharing the index (default KB_WORKERS or 1; about one per core)",
    )


def worker_app() -> Any:
    """The app of one ``kb serve --workers N`` process, from the ``KB_*`` environment (uvicorn's factory)."""
    from kb.service import KnowledgeBase
    from kb.web.app import create_app

    settings = Settings()
    kb = KnowledgeBase(settings)
    if settings.index_applier == "process":
        kb.index.handoff.start_remote(settings.index_wait_seconds)
    return create_app(settings, kb=kb)


def worker_threads(workers: int) -> int:
    """ONNX Runtime intra-op threads of each of ``workers`` serving processes: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


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
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info", "proxy_headers": False}
    applier = None
    if settings.index_applier == "process":
        from kb.cli.applier import ApplierProcess

        applier = ApplierProcess()
        applier.start()
    try:
        if args.workers <= 1:
            if applier is not None:
                kb.index.handoff.start_remote(settings.index_wait_seconds)
            uvicorn.run(create_app(settings, kb=kb), **options)
            return 0
        if settings.smtp_port:
            kb.open()  # the parent keeps a knowledge base only for the e-mail intake (it follows the shared index)
        else:
            kb.close()  # the workers open their own
        if "KB_EMBEDDING_THREADS" not in os.environ:  # the workers share the cores (kb.search.embedders.onnx)
            os.environ["KB_EMBEDDING_THREADS"] = str(worker_threads(args.workers))
        # a worker loading its model on a busy machine answers the supervisor's health ping late: allow 30 s
        uvicorn.run(
            "kb.cli.serve:worker_app", factory=True, workers=args.workers, timeout_worker_healthcheck=30, **options
        )
        return 0
    finally:
        if applier is not None:
            applier.stop()
