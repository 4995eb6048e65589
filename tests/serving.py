"""Starting real ``kb serve`` processes for the tests that need one (workers, first start, crash recovery, pages).

A free port is found by binding port 0 and closing the socket; another process (a test beside it, or a client
socket of the ephemeral range) can take it before ``kb serve`` binds it. :func:`serve` then starts again on another
port instead of failing the test (seen once in a fresh-clone CI run: ``[Errno 98] address already in use``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import ROOT

#: What uvicorn logs when its bind fails because the port is taken (errno 98, EADDRINUSE).
PORT_TAKEN = "address already in use"
#: Ports tried before giving up.
ATTEMPTS = 3


class PortTaken(AssertionError):
    """Every port tried was taken by another process before ``kb serve`` could bind it."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A started ``kb serve``: its process, base URL (``http://127.0.0.1:PORT``), port and log file (stdout and
    stderr together)."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def serve(
    env: Mapping[str, str],
    log_dir: Path,
    *extra: str,
    timeout_s: float = 120.0,
    started: list[subprocess.Popen[bytes]] | None = None,
    new_session: bool = False,
    attempts: int = ATTEMPTS,
) -> Served:
    """Start ``python -m kb.cli.main serve --port PORT *extra`` with ``env`` in the project's folder and wait until
    ``GET /health`` answers 200, on another port when the chosen one was taken before the server bound it.

    Args:
        env: the whole environment of the server.
        log_dir: where the log ``serve-PORT.log`` is written.
        extra: more arguments of ``kb serve``.
        timeout_s: how long one start may take, seconds.
        started: every process started is appended here (for the caller's clean-up), a failed start's too.
        new_session: start the server in a process group of its own (``os.killpg`` ends it with its workers).
        attempts: ports tried (1 for a caller that must start again with other settings, e.g. a fresh data folder).

    Raises:
        PortTaken: ``attempts`` ports were taken.
        AssertionError: the server ended for another reason, or did not answer in ``timeout_s`` (with its log).
    """
    for _ in range(attempts):
        port = free_port()
        log = log_dir / f"serve-{port}.log"
        command = [sys.executable, "-m", "kb.cli.main", "serve", "--port", str(port), *extra]
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                command, env=dict(env), cwd=ROOT, stdout=out, stderr=out, start_new_session=new_session
            )
        if started is not None:
            started.append(process)
        served = Served(process, f"http://127.0.0.1:{port}", port, log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if PORT_TAKEN in served.output():
                    break  # the next port
                raise AssertionError(served.output())
            try:
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            process.kill()
            process.wait(30)
            raise AssertionError(f"kb serve did not answer /health in {timeout_s} s: {served.output()}")
    raise PortTaken(f"{attempts} free port(s) were taken before kb serve could bind them")
