"""Several server processes on one index folder (issue 14 item 5): real ``kb serve`` processes, real HTTP.

Two ``kb serve`` processes on two ports over one data folder show that a write through one is searchable through
the other within 2 s, both ways, and that the survivor of a kill -9 keeps serving, writing and applying; then
``kb serve --workers 2`` starts, serves a write to searches on fresh connections (either worker), and replaces a
worker killed with kill -9 while the other keeps answering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb.config import Settings
from kb.service import KnowledgeBase
from tests.helpers import ROOT
from tests.serving import serve

USER, PASSWORD = "worker-test", "Kb-workers-2026!"

#: Five server processes start here (about a minute on a quiet machine, several on a busy one).
pytestmark = pytest.mark.slow


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder (SQLite, hash encoder) with an editor account."""
    folder = tmp_path / "data"
    kb = KnowledgeBase(Settings(data_dir=folder, embedding_model="hash"))
    try:
        kb.accounts.create(USER, ["kb_editor", "agent"], "test", password=PASSWORD, must_change=False)
    finally:
        kb.close()
    return folder


@pytest.fixture
def servers(data: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started servers, ended (kill) after the test, by their own process group."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def _serve(servers: list[subprocess.Popen[bytes]], data: Path, *extra: str) -> str:
    """Start ``kb serve`` on a free port and wait for its health check; the URL. A port taken between the probe and
    the server's bind (another test, or a client socket of the ephemeral range) is tried again on another."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KB_DATA_DIR": str(data),
        "KB_EMBEDDING_MODEL": "hash",
        "KB_INDEX_POLL_SECONDS": "0.5",
        "KB_LOGIN_RATE_LIMIT": "10000/minute",
        "KB_INDEX_WAIT_SECONDS": "30",  # a write answers 201 (searchable) however loaded the test machine
    }
    env.pop("KB_DATABASE_URL", None)
    return serve(env, data, *extra, timeout_s=180, started=servers, new_session=True).url


def _token(url: str) -> dict[str, str]:
    answer = httpx.post(f"{url}/auth/login", json={"username": USER, "password": PASSWORD}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _write(url: str, headers: dict[str, str], code: str) -> int:
    body = {"body": f"# 打印机 {code}\n错误代码 {code}"}
    answer = httpx.post(f"{url}/articles", headers=headers, json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["article"]["id"])


def _found(url: str, headers: dict[str, str], code: str) -> list[int]:
    """Article ids found for ``code`` on a fresh connection (any worker behind ``url``)."""
    answer = httpx.get(f"{url}/search", headers=headers, params={"q": code, "mode": "bm25"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [r["article_id"] for r in answer.json()["results"]]


def _found_by_every_worker(url: str, headers: dict[str, str], code: str, article_id: int, limit: float = 60) -> None:
    """Wait until 12 searches in a row on fresh connections (the kernel hands them to either worker) find
    ``article_id`` for ``code``: each worker follows the outbox. Raises AssertionError after ``limit`` seconds."""
    deadline, streak = time.monotonic() + limit, 0
    while streak < 12:
        assert time.monotonic() < deadline, f"{code} not found by every worker in {limit} s"
        streak = streak + 1 if article_id in _found(url, headers, code) else 0
        if not streak:
            time.sleep(0.2)


def _seconds_until_found(url: str, headers: dict[str, str], code: str, article_id: int, limit: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if article_id in _found(url, headers, code):
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")


def test_a_write_on_one_server_is_searchable_on_another_and_survives_a_kill(
    data: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    a, b = _serve(servers, data), _serve(servers, data)
    headers = _token(a)
    first = _write(a, headers, "WKA0001")
    assert article_in(a, headers, "WKA0001", first)  # read-your-writes on the writer
    assert _seconds_until_found(b, headers, "WKA0001", first) < 2.0
    second = _write(b, headers, "WKB0002")  # the other one writes now, on top of the first one's changes
    assert _seconds_until_found(a, headers, "WKB0002", second) < 2.0
    assert article_in(b, headers, "WKB0002", second) and article_in(b, headers, "WKA0001", first)

    os.killpg(servers[0].pid, signal.SIGKILL)  # kill -9 of one server while the other serves
    servers[0].wait(30)
    for n in range(5):
        code = f"WKC{n:04d}"
        article_id = _write(b, headers, code)
        assert article_in(b, headers, code, article_id)
    health = httpx.get(f"{b}/health", headers=headers, timeout=60).json()
    index = health.get("index", {})
    assert not index or index["consistent"], health

    c = _serve(servers, data)  # a new server over the same folder starts on what the others wrote
    for n, code in enumerate(["WKA0001", "WKB0002", "WKC0004"]):
        assert _found(c, headers, code), (n, code)


def article_in(url: str, headers: dict[str, str], code: str, article_id: int) -> bool:
    """Whether ``article_id`` is found for ``code`` at once (read-your-writes)."""
    return article_id in _found(url, headers, code)


def _workers(parent: int) -> set[int]:
    """The worker processes of uvicorn's supervisor ``parent`` (its children that run the spawned server; not the
    applier process, :func:`_appliers`)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = set()
    for pid in children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in command and b"kb.cli.applier" not in command:
            found.add(int(pid))
    return found


def test_serve_workers_share_the_index_and_replace_a_killed_worker(
    data: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    url = _serve(servers, data, "--workers", "2")
    deadline = time.monotonic() + 120
    while len(_workers(servers[0].pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _workers(servers[0].pid)
    assert len(workers) == 2, workers
    headers = _token(url)
    article_id = _write(url, headers, "WKW0001")
    _found_by_every_worker(url, headers, "WKW0001", article_id)

    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/search", headers=headers, params={"q": "WKW0001"}, timeout=30)
            statuses.append(answer.status_code)
        except httpx.TransportError:
            statuses.append(0)  # a connection the killed worker had accepted
        replaced = _workers(servers[0].pid) - {killed}
        if len(replaced) == 2 and statuses[-5:] == [200] * 5:
            break
        time.sleep(0.1)
    assert len(_workers(servers[0].pid) - {killed}) == 2, "the killed worker was not replaced"
    assert statuses.count(200) >= 5 and statuses[-5:] == [200] * 5, statuses
    later = _write(url, headers, "WKW0002")
    _found_by_every_worker(url, headers, "WKW0002", later)


def _appliers(parent: int) -> set[int]:
    """The applier processes (``python -m kb.cli.applier``) that ``parent`` started."""
    found = set()
    children = [c for task in Path(f"/proc/{parent}/task").iterdir() for c in _children_of(task)]
    for pid in children:  # a replacement is the child of the supervising thread, not of the main one
        try:
            if b"kb.cli.applier" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
        except FileNotFoundError:
            continue
    return found


def _children_of(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_applier_process_is_replaced_when_killed_and_ends_with_the_server(
    data: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    """``kb serve`` (KB_INDEX_APPLIER=process, the default) applies the index in a child process: a write is
    searchable on return; the child killed with kill -9 is replaced and writes are applied again; the server
    killed with kill -9, the child ends too (its stdin closes)."""
    url = _serve(servers, data)
    server = servers[0].pid
    appliers = _appliers(server)
    assert len(appliers) == 1, appliers
    headers = _token(url)
    first = _write(url, headers, "WKP0001")
    assert article_in(url, headers, "WKP0001", first)

    (killed,) = appliers
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not (_appliers(server) - {killed}) and time.monotonic() < deadline:
        time.sleep(0.2)
    (replacement,) = _appliers(server) - {killed}
    answer = httpx.post(
        f"{url}/articles", headers=headers, json={"body": "# 打印机 WKP0002\n错误代码 WKP0002"}, timeout=60
    )
    assert answer.status_code in (201, 202), answer.text
    second = int(answer.json()["article"]["id"])
    assert _seconds_until_found(url, headers, "WKP0002", second, limit=120) < 120

    os.kill(server, signal.SIGKILL)  # the server only: the applier is left to notice
    servers[0].wait(30)
    deadline = time.monotonic() + 60
    while _alive(replacement) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(replacement), "the applier process outlived its server"
