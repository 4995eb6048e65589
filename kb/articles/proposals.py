"""Update proposals: drafts that distillation (:mod:`kb.desk.distill`) wrote as new evidence for an existing
article instead of a second article (``meta.proposal == "update"``, ``meta.target_article`` = the article's id).

An editor *accepts* one (the proposal's body becomes the target's next version; the target keeps its title,
facts, status and visibility, and records ``meta.accepted_proposals``; the proposal is retired with the target as
its successor) or *rejects* it (the proposal is retired, ``meta.proposal_rejected_by`` set; the target is
untouched). Both are done by :class:`kb.ingest.writer.ArticleWriter` (``accept_proposal`` / ``reject_proposal``),
checked first here so that a refused one changes nothing.
"""

from __future__ import annotations

import difflib

from kb.articles.content import ArticleContent, to_markdown
from kb.articles.lifecycle import check_transition
from kb.articles.proposal_scope import target_id
from kb.articles.rows import content_of
from kb.errors import ConflictError, InvalidInputError
from kb.models import Article

#: Statuses a proposal can be accepted or rejected from (not yet decided).
OPEN_STATUSES = ("draft", "in_review")


def proposal_target(article: Article) -> int | None:
    """The id of the article ``article`` proposes to update, None when it is no update proposal
    (:func:`kb.articles.proposal_scope.target_id` of its ``meta``)."""
    return target_id(article.meta)


def no_target(target: int) -> InvalidInputError:
    """The error of an update proposal whose ``target_article`` names no existing article (or one the caller may
    not read: the same answer, so nothing tells that it exists)."""
    return InvalidInputError(f"meta.target_article must name an existing article, not {target}.")


def check_open(proposal: Article) -> int:
    """The target id of ``proposal`` when it is an update proposal still to decide.

    Raises:
        InvalidInputError: the article is no update proposal (422).
        ConflictError: it was already accepted or rejected (retired) or is published (409).
    """
    target = proposal_target(proposal)
    if target is None:
        raise InvalidInputError(f"Article {proposal.id} is not an update proposal.")
    if proposal.status not in OPEN_STATUSES:
        raise ConflictError(f"Update proposal {proposal.id} is {proposal.status}; only open proposals are decided.")
    check_transition(proposal.status, "retired")
    return target


def applied_content(proposal: Article, target: Article) -> ArticleContent:
    """The target's next version when ``proposal`` is accepted: its content with the proposal's body, and the
    proposal's id added to ``meta.accepted_proposals``.

    Raises:
        ConflictError: the target is retired (its successor is the article to update) (409).
    """
    if target.status == "retired":
        raise ConflictError(f"Article {target.id} is retired; update its successor instead.")
    content = content_of(target)
    accepted = [*content.meta.get("accepted_proposals", []), proposal.id]
    return content.model_copy(update={"body": proposal.body, "meta": content.meta | {"accepted_proposals": accepted}})


def rejected_content(proposal: Article, actor: str) -> ArticleContent:
    """The proposal's content once rejected: retired, ``meta.proposal_rejected_by`` = ``actor``."""
    content = content_of(proposal)
    return content.model_copy(update={"status": "retired", "meta": content.meta | {"proposal_rejected_by": actor}})


def proposal_diff(proposal: Article, target: Article) -> str:
    """A unified diff (``difflib.unified_diff``, 3 lines of context) of what accepting ``proposal`` would change in
    ``target``: the target's Markdown export (:func:`kb.articles.content.to_markdown`) now, and after
    :func:`applied_content`. Empty when nothing would change.

    Raises:
        ConflictError: the target is retired (as :func:`applied_content`).
    """
    before = to_markdown(content_of(target)).splitlines(keepends=True)
    after = to_markdown(applied_content(proposal, target)).splitlines(keepends=True)
    lines = difflib.unified_diff(
        before, after, f"#{target.id} v{target.version}", f"#{target.id} + 建议 #{proposal.id}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
