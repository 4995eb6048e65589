"""Post-incident reviews (故障复盘): the template, parsing a review into its sections, and known errors from it.

A review is Markdown with front matter and six sections (:data:`SECTIONS`): 概述 / 影响 / 时间线 / 根因 / 处置过程 /
改进项. Headings written another way are recognised by the aliases in :data:`SECTION_ALIASES` (the case
write-ups in ``k8s-troubleshooting/avoid/cases`` use 问题描述, 原因分析, 解决方案 ...). The review becomes an
article of kind ``post_incident_review``; its sections stay headings of the body, so each is a chunk with its
heading path and searchable; the incident fields of the front matter (:data:`REVIEW_FIELDS`) are kept in
``meta["review"]``, and its severity becomes a tag, so reviews can be filtered by kind, service and severity.
A review missing any section is stored as a draft, with what is missing in ``meta["review"]["missing"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt

from kb.articles.content import ArticleContent, parse_markdown
from kb.articles.kcs import KcsArticle

KIND = "post_incident_review"

#: The template's sections, in order.
SECTIONS = ("概述", "影响", "时间线", "根因", "处置过程", "改进项")

#: Heading words that mean each section (matched as substrings of the normalised heading, first section wins;
#: 根因 is tried before 处置过程 so "原因分析" is a cause, not a resolution).
SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "概述": ("概述", "摘要", "概要", "问题描述", "问题现象", "问题反馈", "现象", "案例", "背景", "summary", "overview"),
    "影响": ("影响", "impact"),
    "时间线": ("时间线", "时间轴", "时间表", "经过", "timeline"),
    "根因": ("根因", "根本原因", "原因", "root cause", "cause"),
    "处置过程": (
        "处置",
        "处理过程",
        "排查",
        "分析",
        "定位",
        "诊断",
        "抓包",
        "解决",
        "修复",
        "恢复",
        "规避",
        "resolution",
        "mitigation",
    ),
    "改进项": ("改进", "后续", "预防", "待办", "总结", "action item", "follow-up", "follow up", "lessons"),
}

#: Front-matter keys of a review kept in ``meta["review"]``.
REVIEW_FIELDS = ("incident_id", "severity", "started_at", "resolved_at", "detected_by", "tickets", "articles")

#: Tag every review carries.
REVIEW_TAG = "故障复盘"

_NUMBERING = re.compile(
    r"^\s*(?:[0-9]+(?:\.[0-9]+)*[.、)]?|[一二三四五六七八九十]+[、.．]|[（(][0-9一二三四五六七八九十]+[)）])\s*"
)

TEMPLATE = """---
title: （一句话说明故障，例如：订单库主从切换导致下单失败 40 分钟）
service: （服务目录中的服务，例如：数据库）
severity: P2
incident_id: INC-YYYYMMDD-NNNN
started_at: 2026-01-01T09:00:00+08:00
resolved_at: 2026-01-01T09:40:00+08:00
tickets: []
articles: []
---

## 概述

（发生了什么，用户看到的现象。）

## 影响

（影响的业务、用户数、时长、SLA 是否违约。）

## 时间线

- 09:00 监控告警……
- 09:05 值班工程师响应……

## 根因

（直接原因与根本原因。）

## 处置过程

（采取的步骤、命令与结果。）

## 改进项

- [ ] （改进措施，负责人，期限）
"""


@dataclass(frozen=True)
class ParsedReview:
    """A review as parsed: the article content, each template section's Markdown (sections the review does not
    have are absent), and the template sections it lacks."""

    content: ArticleContent
    sections: dict[str, str]
    missing: list[str]


def section_of(heading: str) -> str | None:
    """The template section a heading stands for, or None (``"3. 原因分析"`` -> ``"根因"``)."""
    text = _NUMBERING.sub("", heading).strip().lower()
    for section, aliases in SECTION_ALIASES.items():
        if any(alias in text for alias in aliases):
            return section
    return None


def split_sections(body: str) -> dict[str, str]:
    """The body's text per template section, from its top-level headings (the shallowest level below the title;
    headings inside code blocks are not headings). Text before the first recognised heading counts as 概述;
    several headings of one section are joined in order."""
    tokens = MarkdownIt("commonmark").parse(body)
    headings = [
        (int(tok.tag[1]), tokens[i + 1].content, tok.map[0])
        for i, tok in enumerate(tokens)
        if tok.type == "heading_open" and tok.map is not None
    ]
    below_title = [h for h in headings if h[0] > 1] or headings
    if not below_title:
        return {"概述": body.strip()} if body.strip() else {}
    level = min(h[0] for h in below_title)
    tops = [(text, line) for lvl, text, line in headings if lvl == level]
    lines = body.splitlines()
    sections: dict[str, list[str]] = {}
    lead = "\n".join(line for line in lines[: tops[0][1]] if not line.lstrip().startswith("# ")).strip()
    if lead:
        sections.setdefault("概述", []).append(lead)
    current: str | None = None
    for i, (text, start) in enumerate(tops):
        end = tops[i + 1][1] if i + 1 < len(tops) else len(lines)
        current = section_of(text) or current  # an unrecognised heading continues the section before it
        chunk = "\n".join(lines[start + 1 : end]).strip()
        if current is not None and chunk:
            sections.setdefault(current, []).append(chunk if section_of(text) else f"**{text}**\n\n{chunk}")
    return {s: "\n\n".join(parts) for s, parts in sections.items() if s in SECTIONS}


def parse_review(text: str, *, fallback_title: str | None = None, **overrides: Any) -> ParsedReview:
    """Parse a review (Markdown with optional front matter) into article content of kind ``post_incident_review``.

    A review lacking any section of :data:`SECTIONS` gets status ``draft``; the missing sections are listed.

    Raises:
        ArticleFormatError: bad front matter, no title, or invalid field values.
        PayloadTooLargeError: the body is too long.
    """
    content = parse_markdown(text, fallback_title=fallback_title, kind=KIND, **overrides)
    sections = split_sections(content.body)
    missing = [s for s in SECTIONS if s not in sections]
    review = {k: content.meta.pop(k) for k in REVIEW_FIELDS if k in content.meta}
    review["missing"] = missing
    tags = list(
        dict.fromkeys([*content.tags, REVIEW_TAG, *([str(review["severity"])] if review.get("severity") else [])])
    )
    update: dict[str, Any] = {"meta": content.meta | {"review": review}, "tags": tags}
    if missing and overrides.get("status") is None:
        update["status"] = "draft"
    return ParsedReview(content.model_copy(update=update), sections, missing)


def known_error_from_review(review_id: int, review: ArticleContent) -> ArticleContent:
    """A draft known-error article (kind ``known_error``, KCS template) from a review: symptoms from 概述 and
    影响, cause from 根因, resolution from 处置过程 (and 改进项 as prevention); linked back through
    ``meta["source_review"]``."""
    sections = split_sections(review.body)
    info = review.meta.get("review", {})
    environment = "\n".join(
        f"- {label}：{value}"
        for label, value in (
            ("服务", review.service),
            ("严重级别", info.get("severity")),
            ("故障单", info.get("incident_id")),
        )
        if value
    )
    prevention = sections.get("改进项", "")
    kcs = KcsArticle(
        symptom="\n\n".join(s for s in (sections.get("概述", ""), sections.get("影响", "")) if s),
        environment=environment,
        cause=sections.get("根因", ""),
        resolution=sections.get("处置过程", "") + (f"\n\n**预防措施**\n\n{prevention}" if prevention else ""),
        scope=f"来源：故障复盘 #{review_id}《{review.title}》。",
    )
    return ArticleContent(
        title=f"已知错误：{review.title}",
        body=kcs.to_markdown(),
        summary=review.summary,
        kind="known_error",
        service=review.service,
        tags=[t for t in review.tags if t != REVIEW_TAG],
        error_codes=review.error_codes,
        status="draft",
        meta={"source_review": review_id, "tickets": info.get("tickets", []), "articles": info.get("articles", [])},
    )
