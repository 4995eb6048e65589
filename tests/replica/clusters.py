"""Local PostgreSQL clusters (primary and hot standby) and ``kb serve`` processes for the replica tests.

Everything runs as real processes under one temporary folder: ``initdb``, ``pg_basebackup -R`` and ``pg_ctl``
from this machine's PostgreSQL (``/usr/lib/postgresql/*/bin``, or on ``PATH``), own ports on 127.0.0.1, and every
process is stopped by its PID when the test ends, passed or failed. PostgreSQL refuses to run as root, so as root
its commands run as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]


def postgres_bin() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``pg_basebackup`` (newest version first), or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres")):
            return folder
    return None


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _stop_pid(pid: int, sig: int = signal.SIGTERM, wait_s: float = 15.0) -> None:
    """Send ``sig`` to ``pid``, wait for it to go, SIGKILL it if it stays."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Cluster:
    """One PostgreSQL cluster (a data folder, a port on 127.0.0.1, a socket folder beside it)."""

    def __init__(self, bin_dir: Path, root: Path, name: str) -> None:
        self.bin = bin_dir
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()
        self.pid: int | None = None

    def run(self, *args: str) -> str:
        """Run a PostgreSQL tool as the cluster's owner; its standard output. Raises CalledProcessError."""
        done = subprocess.run(
            _as_owner([str(self.bin / args[0]), *args[1:]]), capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
        return done.stdout

    def init(self) -> None:
        """``initdb`` a new primary: trust authentication on 127.0.0.1 (replication included), WAL for replicas."""
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def base_backup_of(self, primary: Cluster) -> None:
        """``pg_basebackup -R`` of ``primary`` (streaming WAL): this cluster starts as its hot standby."""
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.data), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start on :attr:`port` (waits until it accepts connections) and remember the postmaster's PID."""
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def promote(self) -> None:
        """``pg_ctl promote`` (waits until it accepts writes)."""
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def sql(self, query: str, database: str = "postgres") -> str:
        """``psql -Atc query`` against this cluster; the output stripped."""
        return self.run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-Atc", query
        ).strip()

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop by PID: SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate one (a crash, WAL kept)."""
        if self.pid is not None:
            _stop_pid(self.pid, sig)
            self.pid = None


class Replica:
    """One ``kb serve`` process with its own data folder (own index), sharing the database."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start ``kb serve`` (a real process); :meth:`wait_healthy` waits for it."""
        env = {**os.environ, **self.env, "KB_DATA_DIR": str(self.data_dir), "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kb.cli.main", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def wait_healthy(self, timeout_s: float = 240.0) -> None:
        """Wait until ``GET /health`` answers 200. Raises AssertionError (with the log's end) otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy in {timeout_s} s:\n{self.tail()}")

    def kill9(self) -> None:
        """SIGKILL the server (no shutdown of any kind)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop by PID (SIGTERM, SIGKILL after 15 s)."""
        if self.process is not None and self.process.poll() is None:
            _stop_pid(self.process.pid)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
