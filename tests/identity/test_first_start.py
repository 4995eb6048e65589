"""The first start of an empty database (issue 11, "Done when": ``make run`` prints the one-time admin password and
the URL): a real ``kb serve`` prints both once, and they open a session that must change the password first."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.security


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_first_start_prints_the_one_time_admin_password_and_the_url(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_DATA_DIR": str(tmp_path), "KB_EMBEDDING_MODEL": "hash"}
    env.pop("KB_DATABASE_URL", None)
    command = [sys.executable, "-m", "kb.cli.main", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        printed = ""
        deadline = time.monotonic() + 120
        while "kb serving on http://" not in printed:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, printed
            printed += line
        once = re.search(r"one-time password (\S+)", printed)
        uri = re.search(r"(otpauth://totp/\S+)", printed)
        assert once and uri, printed
        assert f"kb serving on http://127.0.0.1:{port}" in printed
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        code = pyotp.parse_uri(uri.group(1)).now()
        login = httpx.post(
            f"{url}/auth/login", json={"username": "admin", "password": once.group(1), "totp": code}, timeout=30
        )
        assert login.status_code == 200, login.text
        assert login.json()["must_change_password"] is True
        token = {"Authorization": f"Bearer {login.json()['token']}"}
        assert httpx.get(f"{url}/users", headers=token, timeout=30).status_code == 403  # change the password first
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
