"""Backup and restore (数据备份恢复, GB/T 22239-2019 7.1.4.8): the database and the search index in one folder.

``kb backup PATH`` writes into a new folder ``PATH``:

- ``kb.sqlite3``: the SQLite database copied with SQLite's online backup API (a consistent snapshot while the
  service runs), or ``kb.pgdump``: ``pg_dump --format=custom`` of the PostgreSQL database;
- ``index/``: a copy of the search index folder, taken *before* the database, so the index is never ahead of
  the database: on start the index replays the outbox from its manifest's ``seq`` and catches up;
- ``backup.json``: when, which database kind, and the SHA-256 of every file (checked before a restore).

``kb restore PATH`` checks the digests, then replaces the database (SQLite backup API into the live file, or
``pg_restore --clean --if-exists``) and the index folder. Run it with the service stopped. Both are audited (the
restore's row is appended to the restored trail, so the chain stays intact).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from kb.config import Settings
from kb.db import open_database
from kb.errors import InvalidInputError, KBError
from kb.identity.audit import CLI, AuditContext, AuditTrail
from kb.models import utcnow

MANIFEST = "backup.json"
SQLITE_FILE, PG_FILE, INDEX_DIR = "kb.sqlite3", "kb.pgdump", "index"
#: Seconds a pg_dump or pg_restore may take.
PG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore handled: the folder, the database kind and the number of files."""

    path: Path
    database: str
    files: int


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.resolved_database_url
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _pg_args(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment (the password only in PGPASSWORD, never on the command line)."""
    url = make_url(settings.resolved_database_url)
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    env = {"PGPASSWORD": url.password} if url.password else {}
    return [*args, "-d", url.database or "postgres"], env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=PG_TIMEOUT_S, env=os.environ | env)
    except FileNotFoundError as exc:
        raise KBError(f"{command[0]} is not installed; install the PostgreSQL client tools.") from exc
    except subprocess.CalledProcessError as exc:
        raise KBError(f"{command[0]} failed: {exc.stderr.decode('utf-8', 'replace').strip()[:500]}") from exc


def backup(settings: Settings, path: Path, audit: AuditTrail, context: AuditContext = CLI) -> BackupReport:
    """Write a backup of the database and index into the new folder ``path``.

    Raises:
        InvalidInputError: ``path`` exists and is not empty.
        KBError: pg_dump is missing or fails.
    """
    path = path.expanduser().resolve()
    if path.exists() and any(path.iterdir()):
        raise InvalidInputError(f"{path} exists and is not empty; name a new folder for the backup.")
    path.mkdir(parents=True, exist_ok=True)
    index = settings.resolved_index_dir
    if index.exists():
        shutil.copytree(index, path / INDEX_DIR)
    source = _sqlite_path(settings)
    if source is not None:
        kind = "sqlite"
        with sqlite3.connect(source) as src, sqlite3.connect(path / SQLITE_FILE) as dst:
            src.backup(dst)
        dst.close()
        src.close()
    else:
        kind = "postgresql"
        args, env = _pg_args(settings)
        _run(["pg_dump", "--format=custom", "--no-owner", "-f", str(path / PG_FILE), *args], env)
    files = _files(path)
    manifest = {"created_at": utcnow().isoformat(), "database": kind, "files": files}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    audit.write(context, "backup", str(path), reason=f"{kind}, {len(files)} files")
    return BackupReport(path, kind, len(files))


def restore(settings: Settings, path: Path, context: AuditContext = CLI) -> BackupReport:
    """Replace the database and the index with the backup in ``path`` (stop the service first); the restore is
    audited in the restored database (migrated to this version first).

    Raises:
        InvalidInputError: no backup manifest, a file whose digest differs, or a backup of the other database kind.
        KBError: pg_restore is missing or fails.
    """
    path = path.expanduser().resolve()
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path} holds no kb backup ({MANIFEST} missing or unreadable).") from exc
    if _files(path) != manifest.get("files"):
        raise InvalidInputError(f"The backup in {path} is damaged: a file is missing, added or changed.")
    target = _sqlite_path(settings)
    kind = "sqlite" if target is not None else "postgresql"
    if manifest.get("database") != kind:
        raise InvalidInputError(f"The backup holds a {manifest.get('database')} database; this kb uses {kind}.")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path / SQLITE_FILE) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        dst.close()
        src.close()
    else:
        args, env = _pg_args(settings)
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", *args,
              str(path / PG_FILE)], env)  # fmt: skip
    index = settings.resolved_index_dir
    if index.exists():
        shutil.rmtree(index)
    if (path / INDEX_DIR).exists():
        shutil.copytree(path / INDEX_DIR, index)
    database = open_database(settings)  # migrates a backup of an older version
    try:
        AuditTrail(database, settings.audit_key).write(
            context, "restore", str(path), reason=f"backup of {manifest.get('created_at')}"
        )
    finally:
        database.dispose()
    return BackupReport(path, kind, len(manifest["files"]))
