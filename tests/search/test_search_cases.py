"""Tokenization, normalization and ranking cases from ../shared/cases/search-cases.md, end to end.

"Top-k" means hybrid search unless a leg is named. These run with the deterministic hash encoder; the
analyzer-level half of each case is in test_text.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb.api import create_app
from kb.config import Settings
from kb.ingest.markdown import read_article_file
from kb.search.embedders.hashing import HashingEmbedder
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED, add_test_user, create, login, search_ids


def test_bl01_latin_and_digits_glued_to_chinese(client: TestClient) -> None:
    a = create(client, "# Outlook 故障\nOutlook2016客户端无法启动，提示错误 0x800CCC0E")
    create(client, "# 客户端启动慢\n客户端启动很慢的处理办法")
    assert search_ids(client, "Outlook2016 无法启动")[0] == a["id"]


def test_bl02_dictionary_words_with_punctuation(client: TestClient) -> None:
    a = create(client, "# ORA-01555\nORA-01555 快照过旧 处理方法")
    b = create(client, "# ORA-00600\nORA-00600 内部错误，参考编号 01555")
    ids = search_ids(client, "ORA-01555")
    assert ids.index(a["id"]) < ids.index(b["id"])
    w = create(client, "# 无线\nWi-Fi6 接入点 802.1X 认证配置")
    create(client, "# 有线\nWi 字段 Fi 配置 1X 说明 802 房间")
    assert search_ids(client, "Wi-Fi6")[0] == w["id"]
    assert search_ids(client, "802.1X")[0] == w["id"]


def test_bl03_ip_addresses_and_urls(client: TestClient) -> None:
    a = create(client, "# 打印机地址\n打印机固定 IP：10.20.30.40")
    b = create(client, "# 网段\nVLAN 10.20 网段，网关在 30.40 楼层机房")
    c = create(client, "# 管理页\n访问 http://10.20.30.40/login.view 登录管理页")
    ids = search_ids(client, "10.20.30.40")
    assert max(ids.index(a["id"]), ids.index(c["id"])) < ids.index(b["id"])
    assert search_ids(client, "10.20.30.40/login.view")[0] == c["id"]


def test_bl05_full_width_digits(client: TestClient) -> None:
    a = create(client, "# 错误甲\n错误代码：０ｘ８００７０００５（拒绝访问）")
    b = create(client, "# 错误乙\n错误代码 0x80070005")
    create(client, "# 其他\n错误代码 0x80004005 未指定错误")
    for q in ("0x80070005", "０ｘ８００７０００５", "0X80070005"):
        assert set(search_ids(client, q)[:2]) == {a["id"], b["id"]}, q


@pytest.fixture
def dict_client(tmp_path: Path) -> Iterator[TestClient]:
    user_dict = tmp_path / "userdict.txt"
    user_dict.write_text("Active Directory\nWindows Server 2019\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", embedding_model="hash", user_dict=user_dict)
    service = KnowledgeBase(settings, embedder=HashingEmbedder())
    add_test_user(service)
    with TestClient(create_app(settings, kb=service), base_url="https://testserver") as c:
        login(c)
        yield c


def test_bl06_dictionary_entries_with_spaces(dict_client: TestClient) -> None:
    a = create(dict_client, "# 账号锁定\nActive Directory 账号被锁定的处理")
    b = create(dict_client, "# 共享权限\n共享 directory 权限设置，账户 active 状态检查")
    ids = search_ids(dict_client, "Active Directory 锁定")
    assert ids.index(a["id"]) < ids.index(b["id"])
    assert search_ids(dict_client, '"Active Directory"') == [a["id"]]
    w = create(dict_client, "# 安装\nWindows Server 2019 安装失败")
    assert search_ids(dict_client, '"Windows Server 2019"') == [w["id"]]


def test_bl07_odd_bodies_are_accepted(client: TestClient) -> None:
    for body in ("　　", "——……！！", "😀😀", "a  b", "正文" + " 　 " * 500 + "结尾标记词"):
        response = client.post("/articles", json={"title": "怪文", "body": body})
        assert response.status_code == 201, body
    assert search_ids(client, "结尾标记词", mode="bm25")


def test_bl08_it_c_dns_are_not_stop_words(client: TestClient) -> None:
    a = create(client, "# 值班\nIT服务台值班电话")
    b = create(client, "# 工作时间\n服务台工作时间")
    c = create(client, "# C盘\nC盘空间不足清理")
    d = create(client, "# D盘\nD盘空间不足清理")
    e = create(client, "# DNS\nDNS 解析失败排查")
    f = create(client, "# DN\nLDAP DN 格式说明")
    for q, better, worse in (("IT服务台", a, b), ("C盘空间不足", c, d), ("DNS解析", e, f)):
        ids = search_ids(client, q)
        assert ids.index(better["id"]) < ids.index(worse["id"]), q


def test_bl11_term_frequency_counts_in_long_articles(client: TestClient) -> None:
    nouns = ["服务器", "交换机", "路由器", "防火墙", "硬盘", "内存", "网卡", "显示器"]
    nouns += ["键盘", "鼠标", "电源", "机柜", "光纤", "网线", "主板"]
    paragraphs = [f"第{i}段：{'、'.join(nouns)}的巡检记录，本段提到打印机的状态。" for i in range(10)]
    long_body = "# 机房巡检\n" + "\n\n".join(paragraphs) + "\n\n" + "其他设备说明。" * 200
    target = create(client, long_body)
    for i in range(20):
        create(client, f"# 无关文章{i}\n{nouns[i % len(nouns)]}的日常维护 第{i}号")
    assert target["id"] in search_ids(client, "打印机", mode="bm25")[:3]


def test_bl14_traditional_and_simplified_find_each_other(client: TestClient) -> None:
    one = create(client, "# 重置\n重置域账号密码的步骤")
    two = create(client, "# 帳號\n帳號鎖定處理")
    create(client, "# 其他\n邮箱容量已满")
    assert one["id"] in search_ids(client, "重置域帳號密碼")[:3]
    assert two["id"] in search_ids(client, "账号锁定处理")[:3]


def test_bl15_synonyms_expand_queries_only(client: TestClient) -> None:
    doc = create(client, "# 卡纸\n打印机卡纸处理")
    create(client, "# 邮箱\n邮箱容量已满")
    create(client, "# 网络\nVPN 频繁断线")
    for q in ("印表机卡纸", "printer 卡纸"):
        assert doc["id"] in search_ids(client, q)[:3], q
    body = client.get("/search", params={"q": "printer 卡纸", "explain": "true"}).json()
    expansions = body["explain"]["expansions"]
    assert "打印机" in expansions and all(w < 1.0 for w in expansions.values())
    # a new group works at once, without re-indexing
    assert search_ids(client, "蓝牙鼠标", mode="bm25") == []
    group = client.post("/synonyms", json={"terms": ["蓝牙鼠标", "打印机"]}).json()
    assert search_ids(client, "蓝牙鼠标", mode="bm25") == [doc["id"]]
    assert client.delete(f"/synonyms/{group['id']}").status_code == 204
    assert search_ids(client, "蓝牙鼠标", mode="bm25") == []
    assert client.delete(f"/synonyms/{group['id']}").status_code == 404
    assert client.post("/synonyms", json={"terms": ["单个"]}).status_code == 422


def test_bl22_off_topic_queries_are_low_confidence(client: TestClient) -> None:
    for path in sorted(BUNDLED.glob("k8s-troubleshooting/troubleshooting/*/*.md"))[:20]:
        content = read_article_file(path)
        if content is not None:
            client.post("/articles", json={"title": content.title, "body": content.body})
    off_topic = client.get("/search", params={"q": "今天食堂吃什么", "explain": "true"}).json()
    assert off_topic["low_confidence"] is True
    assert off_topic["explain"]["confidence"]["coverage"] < off_topic["explain"]["confidence"]["coverage_min"]
    on_topic = client.get("/search", params={"q": "Pod 一直处于 Pending 状态"}).json()
    assert on_topic["low_confidence"] is False
    assert client.get("/search", params={"q": "？？？"}).json()["low_confidence"] is True


def test_bl22_query_instruction_goes_on_queries_only() -> None:
    plain, instructed = HashingEmbedder(), HashingEmbedder(query_instruction="为这个句子生成表示：")
    passage = ["打印机卡纸处理"]
    assert (instructed.encode_passages(passage) == plain.encode_passages(passage)).all()
    assert (instructed.encode_queries(passage) == plain.encode_passages(["为这个句子生成表示：打印机卡纸处理"])).all()
