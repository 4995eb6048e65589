"""``kb model adapt``: pairs from the KB's own tables, a few real training steps on a tiny model, the saved folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from kb.articles.content import parse_markdown
from kb.cli.main import main
from kb.config import Settings
from kb.errors import InvalidInputError
from kb.model.adapt import MANIFEST_FILE, AdaptManifest, AdaptSettings, adapt, batches
from kb.model.pairs import Pair, data_hash, section_pairs, symptom_pairs, ticket_pairs
from kb.models import Ticket
from kb.search.embedders.sentence_transformers import SentenceTransformerEmbedder
from kb.service import KnowledgeBase

PAIRS = [
    Pair("section", "VPN 无法连接 / 端口", "检查防火墙是否放行 UDP 500 和 4500 端口", 1),
    Pair("section", "打印机脱机 / 处理", "重启打印后台服务并清空打印队列", 2),
    Pair("section", "邮箱已满 / 清理", "归档旧邮件，删除大附件，清空已删除邮件文件夹", 3),
    Pair("section", "磁盘空间不足 / 排查", "查找占用空间最大的目录并清理日志文件", 4),
    Pair("ticket", "家里 VPN 连不上", "VPN 无法连接\n检查防火墙端口", 1),
    Pair("ticket", "打印机打不出来", "打印机脱机\n重启打印后台服务", 2),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sentence-transformers model folder, made small: one BERT layer of width 32 (random weights) over a
    character vocabulary of the fixture texts, mean pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    chars = sorted(
        {c.lower() for p in PAIRS for c in p.anchor + p.positive if not c.isspace()}
        | set("abcdefghijklmnopqrstuvwxyz0123456789")
    )
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n", encoding="utf-8")
    bert = root / "bert"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(bert))
    config = BertConfig(
        vocab_size=len(chars) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(bert))
    word = Transformer(str(bert), max_seq_length=64)
    pooling = Pooling(word.get_embedding_dimension(), "mean")
    folder = root / "st"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(folder))
    return folder


def margin(embedder: SentenceTransformerEmbedder) -> float:
    """Mean cosine of each anchor with its own positive minus the mean with the other positives."""
    a = embedder.encode_queries([p.anchor for p in PAIRS])
    b = embedder.encode_passages([p.positive for p in PAIRS])
    sims = a @ b.T
    own = float(np.mean(np.diag(sims)))
    others = float((sims.sum() - np.trace(sims)) / (sims.size - len(PAIRS)))
    return own - others


def test_adapting_saves_a_loadable_model_that_embeds_differently(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapted"
    settings = AdaptSettings(steps=12, batch_size=4, learning_rate=2e-3, max_seq_length=64, seed=1)
    manifest = adapt("tiny", str(tiny_model), PAIRS, out, settings)
    assert manifest.steps == 12 and manifest.pairs == {"section": 4, "ticket": 2}
    assert manifest.data_sha256 == data_hash(PAIRS) and manifest.base_path == str(tiny_model)
    saved = AdaptManifest.read(out)
    assert saved.steps == 12 and saved.settings["batch_size"] == 4 and saved.created_at
    base = SentenceTransformerEmbedder("base", str(tiny_model))
    adapted = SentenceTransformerEmbedder(str(out), str(out))  # what KB_EMBEDDING_MODEL=<folder> loads
    assert adapted.dimension == base.dimension == 32
    before = base.encode_passages(["检查防火墙端口"])
    after = adapted.encode_passages(["检查防火墙端口"])
    assert float(before[0] @ after[0]) < 0.9999  # the weights changed
    assert margin(adapted) > margin(base)  # and they separate the training pairs better
    with pytest.raises(InvalidInputError, match="exists"):
        adapt("tiny", str(tiny_model), PAIRS, out, settings)


def test_batches_never_repeat_an_anchor_or_positive() -> None:
    pairs = [*PAIRS, Pair("section", PAIRS[0].anchor, "另一段", 1)]
    plan = batches(pairs, 4, 20, seed=3)
    assert len(plan) == 20
    for batch in plan:
        assert len({p.anchor for p in batch}) == len(batch) == len({p.positive for p in batch})
    with pytest.raises(InvalidInputError):
        batches(PAIRS[:1], 4, 1, seed=3)


def test_pairs_come_from_sections_and_resolved_tickets(kb: KnowledgeBase) -> None:
    body = (
        "## 端口\n\n检查防火墙是否放行 UDP 500 和 4500 端口。\n\n"
        "## 证书\n\n证书过期时从证书服务器重新申请并导入客户端证书。"
    )
    outcome = kb.writer.create(parse_markdown(body, title="VPN 无法连接"), "tester")
    assert outcome.article is not None
    aid = outcome.article.id
    sections = section_pairs(kb.database)
    assert {p.anchor for p in sections} == {"VPN 无法连接 / 端口", "VPN 无法连接 / 证书"}
    assert all(p.kind == "section" and p.article_id == aid and "VPN" not in p.positive for p in sections)
    with kb.database.session() as session:
        session.add(
            Ticket(source="test", external_id="T-1", title="家里连不上", description="VPN 一直转圈", content_hash="x")
        )
    assert ticket_pairs(kb.database) == []  # no article resolved it yet
    kb.feedback.record_usage(aid, "resolved", "tester", ticket="T-1")
    (pair,) = ticket_pairs(kb.database)
    assert pair.kind == "ticket" and pair.anchor == "家里连不上\nVPN 一直转圈" and pair.article_id == aid
    assert pair.positive.startswith("VPN 无法连接\n")
    with kb.database.session() as session:
        assert session.scalar(select(Ticket.id)) is not None


def test_symptom_pairs_map_how_a_problem_shows_to_what_fixes_it(kb: KnowledgeBase) -> None:
    body = (
        "---\ndescription: 排查远程桌面连接时提示没有可用许可证的问题\n---\n"
        "## 症状\n\n用户连接远程桌面时被断开，提示没有可用的远程桌面授权。\n\n"
        "## 原因\n\nRD 会话主机的宽限期已过，且没有配置许可证服务器。\n\n"
        "## 解决方法\n\n在服务器管理器中配置 RD 许可模式并添加许可证服务器。\n\n"
        "## 参考\n\n更多信息见远程桌面服务部署文档中的授权章节。"
    )
    outcome = kb.writer.create(parse_markdown(body, title="没有可用的许可证"), "tester")
    assert outcome.article is not None
    aid = outcome.article.id
    kb.writer.create(parse_markdown("## 参数\n\n-a 显示所有文件，包括以点开头的隐藏文件。", title="ls"), "tester")
    pairs = symptom_pairs(kb.database)
    assert all(p.kind == "symptom" and p.article_id == aid for p in pairs)  # the ls page has no symptom text
    symptom = "用户连接远程桌面时被断开，提示没有可用的远程桌面授权。"
    fixes = {p.positive for p in pairs if p.anchor == symptom}
    assert fixes == {  # each cause / fix section, in the form the index encodes it (title / heading, text)
        "没有可用的许可证 / 原因\nRD 会话主机的宽限期已过，且没有配置许可证服务器。",
        "没有可用的许可证 / 解决方法\n在服务器管理器中配置 RD 许可模式并添加许可证服务器。",
    }
    from_summary = [p.positive.split("\n")[0] for p in pairs if p.anchor.startswith("排查远程桌面")]
    assert from_summary == ["没有可用的许可证 / 症状", "没有可用的许可证 / 原因", "没有可用的许可证 / 解决方法"]
    assert len(pairs) == 5 and all(p.anchor != p.positive.split("\n", 1)[1] for p in pairs)


def test_cli_adapts_the_configured_model(
    kb: KnowledgeBase,
    tiny_model: Path,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i, title in enumerate(["VPN 无法连接", "打印机脱机", "邮箱已满"]):
        body = f"## 处理 {i}\n\n{PAIRS[i].positive}，然后逐项确认结果。"
        kb.writer.create(parse_markdown(body, title=title), "tester")
    monkeypatch.setenv("KB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KB_EMBEDDING_MODEL", str(tiny_model))
    out = tmp_path / "cli-adapted"
    assert main(["model", "adapt", str(out), "--steps", "2", "--batch-size", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["pairs"] == {"section": 3}
    assert (out / MANIFEST_FILE).is_file() and (out / "modules.json").is_file()
    assert main(["model", "adapt", str(out), "--steps", "2"]) == 2  # the folder exists: refused
    assert main(["model", "adapt", str(tmp_path / "other"), "--pairs", "section,faq"]) == 2  # unknown kind
