"""Differences between saved versions of an article, as unified diffs of their Markdown export."""

from __future__ import annotations

import difflib

from kb.articles.content import to_markdown
from kb.articles.rows import content_of_version
from kb.models import ArticleVersion


def diff_versions(old: ArticleVersion, new: ArticleVersion) -> str:
    """A unified diff (``difflib.unified_diff``, 3 lines of context) from ``old`` to ``new``, over the Markdown
    with front matter that :func:`kb.articles.content.to_markdown` exports, so field changes (status, tags) show too.
    Empty when the two versions hold the same content."""
    before = to_markdown(content_of_version(old)).splitlines(keepends=True)
    after = to_markdown(content_of_version(new)).splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, f"v{old.version}", f"v{new.version}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
