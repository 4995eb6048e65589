"""The kb command line (thin: each command calls one library function)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.cli.main import main
from tests.helpers import BUNDLED


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_EMBEDDING_MODEL", "hash")
    return tmp_path


def test_import_search_status_rebuild(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k8s = BUNDLED / "k8s-troubleshooting"
    assert main(["import", str(k8s)]) == 0
    out = capsys.readouterr().out
    assert "57 created" in out and "consistent=True" in out

    assert main(["import", str(k8s), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == 57 and report["created"] == 0 and report["index"]["consistent"]

    assert main(["search", "Pod 一直处于 Pending 状态", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("Pod 一直处于 Pending 状态  (score " + out.splitlines()[0].split("(score ")[1])
    assert "troubleshooting/pod/keep-pending.md" in out

    assert main(["search", "Pending", "--json", "--explain", "--mode", "bm25"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mode"] == "bm25" and result["results"][0]["explain"]["bm25"]["rank"] == 1
    assert set(result["results"][0]) >= {
        "article_id",
        "title",
        "source_path",
        "score",
        "snippet",
        "heading_path",
    }

    assert main(["index", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["articles"] == 57 and status["consistent"]

    assert main(["index", "rebuild"]) == 0
    assert "rebuilt generation 2" in capsys.readouterr().out
    assert main(["index", "status"]) == 0


def test_errors_are_messages_not_tracebacks(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_env / "data"
    for command in (
        ["search", "远程桌面"],
        ["why", "远程桌面", "1"],
        ["analysis", "--start", "2024-01-01", "--end", "2024-02-01"],
        ["audit", "verify"],
        ["index", "status"],
        ["index", "rebuild"],
        ["article", "show", "1"],
        ["synonyms", "list"],
    ):
        assert main(command) == 2, command  # session 10's tester: it made an empty KB in ./var and answered from it
        assert f"no knowledge base in {data.resolve()}" in capsys.readouterr().err
    assert not (data / "kb.sqlite3").exists() and not (data / "index").exists()
    assert main(["import", str(cli_env / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["import", str(BUNDLED / "k8s-troubleshooting"), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "x" * 1001]) == 2
    assert "at most 1000" in capsys.readouterr().err


def test_a_bad_setting_is_a_message_naming_it(cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KB_TICKET_VOTE_MIN_SIMILARITY", "7")
    monkeypatch.setenv("KB_AUDIT_KEY", "short-secret")
    assert main(["search", "远程桌面"]) == 2
    err = capsys.readouterr().err
    assert "setting KB_TICKET_VOTE_MIN_SIMILARITY: Input should be less than or equal to 1" in err
    assert "Traceback" not in err and "short-secret" not in err
    monkeypatch.setenv("KB_TICKET_VOTE_MIN_SIMILARITY", "0.5")
    monkeypatch.setenv("KB_TICKET_VOTE_WEIGHT", "inf")  # session 11's tester: scores became inf and NaN
    assert main(["search", "远程桌面"]) == 2 and "KB_TICKET_VOTE_WEIGHT" in capsys.readouterr().err
    monkeypatch.setenv("KB_TICKET_VOTE_WEIGHT", "1.5")
    monkeypatch.setenv("KB_ADMIN_CIDRS", "notjson")  # a list setting that does not parse
    assert main(["search", "远程桌面"]) == 2
    err = capsys.readouterr().err
    assert "admin_cidrs" in err and "Traceback" not in err


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--help"],
        ["import", "--help"],
        ["index", "--help"],
        ["search", "--help"],
        ["serve", "--help"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        assert "usage: kb" in capsys.readouterr().out


def test_why_explains_match_and_miss(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k8s = BUNDLED / "k8s-troubleshooting"
    assert main(["import", str(k8s), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "Pod 一直处于 Pending 状态", "--json", "--limit", "1"]) == 0
    pending = json.loads(capsys.readouterr().out)["results"][0]["article_id"]
    assert main(["why", "Pending 调度失败", str(pending), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bm25"]["rank"] == 1 and report["hybrid_rank"] == 1
    pending_term = next(t for t in report["terms"] if t["term"] == "pending")
    assert "title" in pending_term["in"]
    assert main(["why", "完全无关的食堂菜单", str(pending)]) == 0
    out = capsys.readouterr().out
    assert "NOT in the article" in out and "BM25 leg:   rank not matched" in out
    assert main(["why", "x", "999999"]) == 2


def test_article_lifecycle_commands(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rds = BUNDLED / "windows-troubleshooting/WindowsServerDocs/remote/remote-desktop-services/troubleshoot"
    assert main(["import", str(rds)]) == 0
    capsys.readouterr()
    assert main(["search", "远程桌面 没有可用的许可证", "--json", "--limit", "1"]) == 0
    aid = json.loads(capsys.readouterr().out)["results"][0]["article_id"]

    assert main(["article", "status", str(aid), "draft"]) == 2  # published -> draft is not allowed
    assert "from published it can go to: in_review, retired" in capsys.readouterr().err
    assert main(["article", "status", str(aid), "in_review"]) == 0
    assert "in_review, version 2, indexed=True" in capsys.readouterr().out
    assert main(["article", "status", str(aid), "published", "--review-by", "2020-01-01"]) == 0
    assert main(["article", "feedback", str(aid), "--not-helpful", "--comment", "许可证服务器步骤过时"]) == 0
    assert main(["article", "used", str(aid), "INC-0001"]) == 0
    capsys.readouterr()

    assert main(["article", "review-queue", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)
    assert [(i["id"], i["reasons"], i["resolved"], i["not_helpful"]) for i in queue] == [(aid, ["expired"], 1, 1)]

    assert main(["article", "versions", str(aid)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["article", "diff", str(aid), "1", "2"]) == 0
    diff = capsys.readouterr().out
    assert "-status: published" in diff and "+status: in_review" in diff

    exported = cli_env / "exported.md"
    assert main(["article", "export", str(aid), "-o", str(exported)]) == 0
    assert exported.read_text(encoding="utf-8").startswith("---\ntitle: 客户端无法连接")
    assert main(["article", "show", str(aid), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "published" and shown["review_by"] == "2020-01-01" and shown["stats"]["resolved"] == 1
    assert main(["article", "restore", str(aid), "9"]) == 2
    assert "has no version 9" in capsys.readouterr().err


def test_review_commands(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["article", "review-template"]) == 0
    template = capsys.readouterr().out
    reviews = cli_env / "reviews"
    reviews.mkdir()
    (reviews / "draft.md").write_text(template, encoding="utf-8")
    cases = BUNDLED / "k8s-troubleshooting/avoid/cases"
    assert main(["import", "--as-reviews", str(reviews), str(cases), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["created"] == 13 and report["errors"] == []
    assert (
        main(["search", "kubectl SchemaError metrics-server", "--status", "draft", "--kind", "post_incident_review"])
        == 0
    )
    assert "schemaerror-when-using-kubectl-apply-or-edit.md" in capsys.readouterr().out.splitlines()[1]
    assert main(["search", "故障", "--kind", "post_incident_review", "--json"]) == 0
    template_id = json.loads(capsys.readouterr().out)["results"][0]["article_id"]  # the complete one is published
    assert main(["article", "known-error", str(template_id)]) == 0
    assert "draft, version 1, indexed=True" in capsys.readouterr().out


def test_search_output_drops_terminal_control_characters(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Session 11's outside tester: pasted terminal output in an article recoloured the user's terminal."""
    folder = cli_env / "docs"
    folder.mkdir()
    (folder / "tty.md").write_text(
        "# 彩色标题\n## 步骤 \x1b[1m加粗\x1b[0m\n终端提示 \x1b[31m红色警告\x1b[0m 和响铃\x07。\n", encoding="utf-8"
    )
    assert main(["import", str(folder)]) == 0
    capsys.readouterr()
    assert main(["search", "红色警告"]) == 0
    out = capsys.readouterr().out
    assert "红色警告" in out and "加粗" in out and "\x1b" not in out and "\x07" not in out
