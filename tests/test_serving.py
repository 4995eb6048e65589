"""The test helper that starts real servers (tests/serving.py) survives a port taken between its probe and the
server's bind: the race a fresh-clone CI run once lost."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import serving
from tests.helpers import ROOT


@pytest.fixture
def taken() -> Iterator[int]:
    """A port of 127.0.0.1 held by a listening socket for the test's length."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_DATA_DIR": str(tmp_path / "data"), "KB_EMBEDDING_MODEL": "hash"}
    env.pop("KB_DATABASE_URL", None)
    return env


def test_a_port_taken_before_the_bind_is_tried_again_on_another(
    tmp_path: Path, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([taken, serving.free_port()])
    monkeypatch.setattr(serving, "free_port", lambda: next(ports))
    started: list[subprocess.Popen[bytes]] = []
    served = serving.serve(_env(tmp_path), tmp_path, started=started)
    try:
        assert served.port != taken and len(started) == 2
        assert serving.PORT_TAKEN in (tmp_path / f"serve-{taken}.log").read_text(encoding="utf-8", errors="replace")
        assert httpx.get(f"{served.url}/health", timeout=10).status_code == 200
    finally:
        served.process.terminate()
        served.process.wait(30)


def test_a_caller_that_starts_again_itself_is_told_the_port_was_taken(
    tmp_path: Path, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "free_port", lambda: taken)
    with pytest.raises(serving.PortTaken):
        serving.serve(_env(tmp_path), tmp_path, attempts=1)
