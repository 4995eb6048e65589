"""The optional draft summariser against a local fake OpenAI-compatible server (never a real one)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kb.articles.kcs import SECTIONS
from kb.config import Settings
from kb.desk.summarizer import Summarizer
from kb.ingest.redaction import Redactor
from kb.ingest.tickets import import_tickets
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import EXPORT


class FakeOpenAI:
    """``POST /v1/chat/completions``: records each request and answers with ``reply(user_message)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply = lambda user: user.split("\n\n", 1)[1].replace("## 症状", "## 症状\n\n（已润色）")
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                answer = {
                    "choices": [
                        {"message": {"role": "assistant", "content": fake.reply(body["messages"][-1]["content"])}}
                    ]
                }
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.close()


DRAFT = "\n\n".join(f"## {s}\n\n内容{i}" for i, s in enumerate(SECTIONS)) + "\n"


def test_rewrite_sends_the_chat_completions_request(fake_openai: FakeOpenAI) -> None:
    out = Summarizer(fake_openai.url, "qwen2.5-7b-instruct", api_key="sk-local").rewrite("标题", DRAFT, Redactor())
    assert out is not None and "（已润色）" in out and all(f"## {s}" in out for s in SECTIONS)
    request = fake_openai.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-local"
    assert request["body"]["model"] == "qwen2.5-7b-instruct" and request["body"]["temperature"] == 0
    assert (
        request["body"]["messages"][0]["role"] == "system"
        and "## 解决方法" in request["body"]["messages"][0]["content"]
    )


def test_bad_answers_keep_the_draft(fake_openai: FakeOpenAI) -> None:
    summarizer = Summarizer(fake_openai.url, "m")
    fake_openai.reply = lambda user: "## 症状\n\n只剩一节"
    assert summarizer.rewrite("标题", DRAFT, Redactor()) is None
    fake_openai.status = 500
    assert summarizer.rewrite("标题", DRAFT, Redactor()) is None
    fake_openai.status = 200
    fake_openai.reply = lambda user: user.split("\n\n", 1)[1] + "\n如有问题请拨打 13812345678"
    out = summarizer.rewrite("标题", DRAFT, Redactor())
    assert out is not None and "13812345678" not in out and "[手机号]" in out  # answers are redacted too
    assert Summarizer("http://127.0.0.1:9/v1", "m", timeout_s=2).rewrite("标题", DRAFT, Redactor()) is None


def test_distilled_drafts_are_rewritten_and_nothing_personal_is_sent(
    fake_openai: FakeOpenAI, tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        embedding_model="hash",
        distill_min_group=4,
        distill_similarity=0.5,
        summarizer_url=fake_openai.url,
        summarizer_model="local-model",
    )
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        import_tickets(kb.database, EXPORT, "kb-zh")
        report = kb.distiller.distill("distiller")
        assert len(report.groups) == 2 and len(fake_openai.requests) == 2
        for group in report.groups:
            article = kb.store.get(group.article_id or 0)
            assert "（已润色）" in article.body and article.meta["rewritten_by"] == "local-model"
        sent = json.dumps([r["body"] for r in fake_openai.requests], ensure_ascii=False)
        for secret in ("13812345678", "wang.qiang@example.com", "010-62345678", "张伟", "李娜"):
            assert secret not in sent
    finally:
        kb.close()
