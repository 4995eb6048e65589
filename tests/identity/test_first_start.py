"""The first start of an empty database (issue 11, "Done when": ``make run`` prints the one-time admin password and
the URL): a real ``kb serve`` prints both once, and they open a session that must change the password first."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.helpers import ROOT
from tests.serving import ATTEMPTS, PortTaken, serve

pytestmark = pytest.mark.security


def test_first_start_prints_the_one_time_admin_password_and_the_url(tmp_path: Path) -> None:
    for attempt in range(ATTEMPTS):  # a port taken before the bind: again in a new folder (a first start again)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_DATA_DIR": str(tmp_path / f"data-{attempt}")}
        env["KB_EMBEDDING_MODEL"] = "hash"
        env.pop("KB_DATABASE_URL", None)
        try:
            served = serve(env, tmp_path, timeout_s=120, attempts=1)
            break
        except PortTaken:
            continue
    else:
        raise PortTaken(f"{ATTEMPTS} free ports were taken before kb serve could bind them")
    try:
        printed = served.output()
        once = re.search(r"one-time password (\S+)", printed)
        uri = re.search(r"(otpauth://totp/\S+)", printed)
        assert once and uri, printed
        assert f"kb serving on http://127.0.0.1:{served.port}" in printed
        url = served.url
        code = pyotp.parse_uri(uri.group(1)).now()
        login = httpx.post(
            f"{url}/auth/login", json={"username": "admin", "password": once.group(1), "totp": code}, timeout=30
        )
        assert login.status_code == 200, login.text
        assert login.json()["must_change_password"] is True
        token = {"Authorization": f"Bearer {login.json()['token']}"}
        assert httpx.get(f"{url}/users", headers=token, timeout=30).status_code == 403  # change the password first
    finally:
        served.process.terminate()
        served.process.wait(30)
