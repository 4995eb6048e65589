"""The analyzer as a unit: normalisation, protected identifiers, no junk tokens (BL-01..08, BL-14)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kb.search.text import TextAnalyzer


def test_latin_and_digit_runs_are_never_cut_into_single_characters(analyzer: TextAnalyzer) -> None:
    terms = analyzer.terms("Outlook2016客户端无法启动，提示错误 0x800CCC0E")  # BL-01
    assert "outlook2016" in terms
    assert "0x800ccc0e" in terms
    assert not [t for t in terms if len(t) == 1 and t.isascii()]


def test_identifiers_with_punctuation_stay_whole(analyzer: TextAnalyzer) -> None:  # BL-02, BL-03
    assert "ora-01555" in analyzer.terms("ORA-01555 快照过旧 处理方法")
    assert "802.1x" in analyzer.terms("无线 802.1X 认证失败")
    assert "wi-fi6" in analyzer.terms("Wi-Fi6 连接不稳定")
    assert "10.20.30.40" in analyzer.terms("打印机固定 IP：10.20.30.40")
    assert "http://10.20.30.40/login.view" in analyzer.terms("访问 http://10.20.30.40/login.view 登录管理页")
    assert "--force" in analyzer.terms("kubectl delete pod x --force")
    assert "/etc/resolv.conf" in analyzer.terms("检查 /etc/resolv.conf 文件")
    assert "srv-bj-db01" in analyzer.terms("资产 SRV-BJ-DB01 宕机")


def test_full_width_and_case_are_unified(analyzer: TextAnalyzer) -> None:  # BL-05
    expected = analyzer.terms("错误代码 0x80070005")
    assert analyzer.terms("错误代码：０ｘ８００７０００５") == expected
    assert analyzer.terms("错误代码 0X80070005") == expected


def test_traditional_chinese_is_converted_to_simplified(analyzer: TextAnalyzer) -> None:  # BL-14
    assert analyzer.terms("帳號鎖定處理") == analyzer.terms("账号锁定处理")
    assert "印表机" in analyzer.terms("印表機卡紙")  # regional term: a synonym of 打印机, not a conversion
    assert analyzer.normalize("文件程序") == "文件程序"  # simplified text is never rewritten


def test_short_english_words_and_single_letters_are_kept(analyzer: TextAnalyzer) -> None:  # BL-08
    assert "it" in analyzer.terms("IT服务台值班电话")
    assert "c盘" in analyzer.terms("C盘空间不足清理") or "c" in analyzer.terms("C盘空间不足清理")
    terms = analyzer.terms("turn it on if you can, not US layout")
    for word in ("it", "on", "can", "not", "us"):
        assert word in terms
    assert "dns" in analyzer.terms("DNS 解析失败") and "dn" in analyzer.terms("LDAP DN 格式")


def test_offsets_point_into_the_original_text(analyzer: TextAnalyzer) -> None:
    text = "错误代码：０ｘ８００７０００５（拒绝访问）"
    for token in analyzer.tokens(text):
        assert analyzer.normalize(text[token.start : token.end]).replace(" ", "_") == token.text or not token.identifier


def test_user_dictionary_entries_with_spaces_and_punctuation(tmp_path: Path) -> None:  # BL-06
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("Windows Server 2019\n域控服务器 100 n\nORA-01555\n", encoding="utf-8")
    custom = TextAnalyzer([user_dict])
    assert "windows_server_2019" in custom.terms("Windows Server 2019 安装失败")
    assert "active_directory" in custom.terms("Active Directory 账号被锁定")  # bundled dictionary
    assert "域控服务器" in custom.terms("域控服务器 无法登录")


def test_filler_only_queries_have_no_keyword_terms(analyzer: TextAnalyzer) -> None:  # BL-12
    for query in ("怎么", "的", "是 的 了", "请问一下"):
        assert analyzer.analyze_query(query).terms == ()
    assert analyzer.analyze_query("请问打印机卡纸怎么办").terms == ("打印机", "卡纸")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_tokens_are_never_empty_or_blank(text: str) -> None:  # BL-07
    analyzer = _shared()
    for token in analyzer.tokens(text):
        assert token.text and token.text.strip() and " " not in token.text
        assert 0 <= token.start < token.end <= len(text)


def test_robustness_inputs(analyzer: TextAnalyzer) -> None:  # BL-07
    for text in ("　　", "——……！！", "😀😀", "", " \n\t"):
        assert analyzer.terms(text) == []
    assert analyzer.terms("a  b") == ["a", "b"]


_ANALYZER: list[TextAnalyzer] = []


def _shared() -> TextAnalyzer:
    if not _ANALYZER:
        _ANALYZER.append(TextAnalyzer())
    return _ANALYZER[0]


def test_tokens_not_remembered_leave_the_normalised_forms_cache_alone(analyzer: TextAnalyzer) -> None:
    """The snippet highlighter tokenises thousands of small blocks with remember=False: they must not push the
    normalised forms of whole chunks out of the analyzer's cache (the same tokens either way)."""
    text = "服务器无法访问，重启 kube-proxy 后恢复（第 7 次）"
    before = analyzer._cached_norm.cache_info().currsize
    fresh = analyzer.tokens(text, remember=False)
    assert analyzer._cached_norm.cache_info().currsize == before
    assert fresh == analyzer.tokens(text)
