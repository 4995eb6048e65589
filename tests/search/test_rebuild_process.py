"""Rebuild safety with a real second process (issue 10): the server keeps answering while ``kb index rebuild``
runs in another process; afterwards writes are 2xx and searchable, and old generations go only when unused."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from kb.config import Settings
from tests.helpers import ROOT, create, kb_of, search_ids


def _rebuild(settings: Settings) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KB_DATA_DIR": str(settings.data_dir),
        "KB_DATABASE_URL": settings.resolved_database_url,
        "KB_EMBEDDING_MODEL": "hash",
    }
    command = [sys.executable, "-m", "kb.cli.main", "index", "rebuild"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _searchable(client: TestClient, query: str, article_ids: list[int], seconds: float = 30) -> bool:
    """Whether every one of ``article_ids`` is found for ``query`` within ``seconds`` (a 202 write is applied by
    the background applier)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if set(article_ids) <= set(search_ids(client, query, limit=100, mode="bm25")):
            return True
        time.sleep(0.1)
    return False


def test_rebuild_in_a_second_process_never_breaks_the_server(client: TestClient, settings: Settings) -> None:
    for i in range(20):
        create(client, f"# 打印机故障 {i}\n打印队列卡住，重启 Print Spooler 服务。编号 QL{i}")
    root: Path = kb_of(client).index.root
    statuses: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:  # searches during the rebuilds must never fail
        while not stop.is_set():
            statuses.append(client.get("/search", params={"q": "打印队列"}).status_code)

    reader = threading.Thread(target=keep_searching)
    reader.start()
    try:
        for round_ in range(3):
            rebuild = _rebuild(settings)
            written = []
            while (
                rebuild.poll() is None and len(written) < 100
            ) or not written:  # write during the rebuild, at least once
                answer = client.post(
                    "/articles",
                    json={"body": f"# 新文章 {round_}-{len(written)}\n错误代码 VX{round_}{len(written):03d}"},
                )
                statuses.append(answer.status_code)
                written.append(answer.json()["article"]["id"])
                time.sleep(0.1)
            output = rebuild.communicate(timeout=120)[0]
            assert rebuild.returncode == 0, output
            after = client.post("/articles", json={"body": f"# 重建之后 {round_}\n白虎堂 BH{round_}"})
            assert after.status_code in (201, 202), after.text
            assert _searchable(client, f"BH{round_}", [after.json()["article"]["id"]])
            for n, article_id in enumerate(written):
                assert _searchable(client, f"VX{round_}{n:03d}", [article_id]), (round_, n, article_id)
            assert kb_of(client).index.generation.path.name == (root / "CURRENT").read_text().strip()
    finally:
        stop.set()
        reader.join()
    assert statuses and all(status in (200, 201, 202) for status in statuses), sorted(set(statuses))
    generations = sorted(p.name for p in root.glob("gen-*"))
    assert "gen-000001" not in generations and "gen-000004" in generations  # unused old ones deleted
    assert kb_of(client).index.status().consistent
