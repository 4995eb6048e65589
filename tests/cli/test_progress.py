"""Progress bars of ``kb import``: on stderr when it is a terminal, never with ``--json`` or without a TTY."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from kb.cli.main import main
from kb.cli.progress import bars_enabled
from tests.helpers import BUNDLED


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_EMBEDDING_MODEL", "hash")
    return tmp_path


def test_import_draws_file_and_index_bars_on_a_terminal(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["import", str(BUNDLED / "k8s-troubleshooting")]) == 0
    drawn = terminal.getvalue()
    assert "files: 100%" in drawn and "57/57" in drawn
    assert "index: 100%" in drawn  # every outbox row of the import applied


def test_no_bars_with_json_or_without_a_terminal(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["import", str(BUNDLED / "k8s-troubleshooting"), "--json"]) == 0
    assert terminal.getvalue() == ""
    assert json.loads(capsys.readouterr().out)["created"] == 57
    assert not bars_enabled(False, io.StringIO()) and not bars_enabled(True, _Terminal())
    assert bars_enabled(False, _Terminal())


def test_rebuild_draws_an_article_bar_on_a_terminal_only(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(BUNDLED / "k8s-troubleshooting"), "--json"]) == 0
    capsys.readouterr()
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["index", "rebuild"]) == 0
    assert "articles: 100%" in terminal.getvalue() and "57/57" in terminal.getvalue()
    assert "rebuilt generation 2" in capsys.readouterr().out
    terminal.truncate(0)
    terminal.seek(0)
    assert main(["index", "rebuild", "--json"]) == 0
    assert terminal.getvalue() == ""
    report = json.loads(capsys.readouterr().out)
    assert report["generation"] == 3 and report["index"]["consistent"] is True
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: no bar
    assert main(["index", "rebuild"]) == 0
    assert sys.stderr.getvalue() == ""
