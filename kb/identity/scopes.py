"""Who may see which ticket and which article (访问控制 and 有限制的共享, GB/T 22239-2019 7.1.4.2): the one place
for both rules, in a per-row form (:func:`ticket_visible`, :func:`article_visible`) and a SQL form
(:func:`ticket_clause`) for lists.

Tickets:

- a caller whose roles grant ``ticket.all`` (desk_lead) sees every ticket;
- a caller whose roles grant ``ticket.groups`` (agent, engineer) sees the tickets of their resolver groups, the
  tickets not yet assigned to a group (the intake queue L1 triages) and the tickets assigned to them;
- anyone sees the tickets they asked for (``tickets.requester`` is their user name).

Articles, by ``visibility``:

- ``public``: everyone, including the e-mail and IM channels (:data:`CHANNEL`);
- ``internal``: callers whose roles grant ``article.internal`` (the desk roles and kb_editor);
- ``restricted``: callers holding one of the roles or groups in ``restricted_to``, and callers whose roles grant
  ``article.all`` (kb_editor, who maintains every article).

A ticket or article the caller may not see answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, func, or_, true

from kb.errors import ArticleNotPublishedError, ForbiddenError, NotFoundError
from kb.identity.names import fold_name
from kb.identity.permissions import UNGATED, Permission, allowed
from kb.models import Article, ArticleVersion, Ticket

#: Roles that may read and search articles that are not published (drafts, reviews in progress, retired).
EDITOR_ROLES = ("kb_editor",)


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user's name (case-folded), roles and resolver groups; or a service account."""

    username: str
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    #: A service account's scopes (kb.identity.service_tokens): exactly what it may do; None for people.
    scopes: frozenset[Permission] | None = None

    def may(self, permission: Permission) -> bool:
        """True when one of the principal's roles (or, for a service account, its scopes) grants ``permission``."""
        if self.scopes is not None:
            return permission in UNGATED or permission in self.scopes
        return allowed(self.roles, permission)

    @property
    def is_editor(self) -> bool:
        """Whether the principal has an editor role (:data:`EDITOR_ROLES`): reads and searches drafts and reviews
        in progress. The one test of it."""
        return bool(set(self.roles) & set(EDITOR_ROLES))

    def require_editor(self, what: str) -> None:
        """Raise :class:`ForbiddenError` unless the principal has an editor role; ``what`` names the action."""
        if not self.is_editor:
            raise ForbiddenError(
                f"{what} needs the editor role; {self.username} has {', '.join(self.roles) or 'none'}."
            )


#: Who reads through the e-mail and IM channels: an unauthenticated requester, who sees public articles only.
CHANNEL = Principal("(channel)", ())


def ticket_visible(principal: Principal, ticket: Ticket) -> bool:
    """Whether ``principal`` may see ``ticket`` (rules in the module docstring)."""
    if principal.may(Permission.TICKET_ALL):
        return True
    if fold_name(ticket.requester or "") == principal.username:
        return True
    if not principal.may(Permission.TICKET_GROUPS):
        return False
    return (
        ticket.resolver_group is None
        or ticket.resolver_group in principal.groups
        or fold_name(ticket.assignee or "") == principal.username
    )


def ticket_clause(principal: Principal) -> ColumnElement[bool]:
    """The SQL form of :func:`ticket_visible`, for ``select(Ticket).where(ticket_clause(p))``."""
    if principal.may(Permission.TICKET_ALL):
        return true()
    own = func.lower(func.trim(Ticket.requester)) == principal.username
    if not principal.may(Permission.TICKET_GROUPS):
        return own
    group = Ticket.resolver_group.in_(principal.groups) if principal.groups else false()
    mine = func.lower(Ticket.assignee) == principal.username
    return or_(own, Ticket.resolver_group.is_(None), group, mine)


def visible_ticket(principal: Principal, ticket: Ticket) -> Ticket:
    """``ticket`` when ``principal`` may see it.

    Raises:
        NotFoundError: the caller may not see it; the message is the one of a ticket that does not exist.
    """
    if not ticket_visible(principal, ticket):
        raise NotFoundError(missing_ticket(ticket.id))
    return ticket


def missing_ticket(ticket_id: int) -> str:
    """The message of a ticket that does not exist (or that the caller may not see)."""
    return f"Ticket {ticket_id} does not exist."


def article_visible(principal: Principal | None, visibility: str, restricted_to: Sequence[str] = ()) -> bool:
    """Whether ``principal`` may see an article of ``visibility`` (public / internal / restricted) restricted to
    the roles or groups ``restricted_to``; ``None`` is the system itself (indexing, the command line): everything."""
    if principal is None or visibility == "public":
        return True
    if visibility == "internal":
        return principal.may(Permission.ARTICLE_INTERNAL)
    if principal.may(Permission.ARTICLE_ALL):
        return True
    return bool(set(restricted_to) & (set(principal.roles) | set(principal.groups)))


def article_clause(principal: Principal | None) -> ColumnElement[bool]:
    """The SQL form of :func:`article_visible`, for ``select(Article).where(article_clause(p))``: exact for public
    and internal articles; ``restricted`` ones it keeps whenever the principal might hold one of their
    ``restricted_to`` roles or groups (a JSON list), so lists check those rows with :func:`article_visible` too
    when :func:`restricted_rows_need_check` says so."""
    if principal is None:
        return true()
    shown = ["public", "restricted"]
    if principal.may(Permission.ARTICLE_INTERNAL):
        shown.append("internal")
    return Article.visibility.in_(shown)


def restricted_rows_need_check(principal: Principal | None) -> bool:
    """Whether rows that :func:`article_clause` keeps must still pass :func:`article_visible` (the principal may
    not read every restricted article)."""
    return principal is not None and not principal.may(Permission.ARTICLE_ALL)


def missing_article(article_id: int) -> str:
    """The message of an article that does not exist (or that the caller may not see)."""
    return f"Article {article_id} does not exist."


#: Statuses whose content only editors read (a draft, an article waiting in review).
UNPUBLISHED = ("draft", "in_review")
#: The statuses whose articles a caller without an editor role may read (the rest of
#: :data:`kb.articles.content.STATUSES`).
READABLE_STATUSES = ("published", "retired")


def readable_article(principal: Principal, article: Article) -> Article:
    """``article`` when ``principal`` may read its content: visible (:func:`visible_article`) and, when it is
    a draft or in review, read by an editor. The one rule for every route that hands out an article's text
    (the article, its versions, diffs, Markdown export, why).

    Raises:
        NotFoundError: the caller may not see it, or it is a draft or in review and the caller is not an editor
            (the answer of a missing article: found by session 7's outside tester, a draft answered 403 and so
            told that it existed).
    """
    visible_article(principal, article)
    if article.status in UNPUBLISHED and not principal.is_editor:
        raise NotFoundError(missing_article(article.id))
    return article


def readable_successor(principal: Principal, article: Article, load: Callable[[int], Article]) -> Article | None:
    """The article named by ``article.superseded_by`` (``load`` reads it) when ``principal`` may read it
    (:func:`readable_article`), else None, as when it names none or it no longer exists. The one rule for every
    answer that names a successor (the API's ``superseded_by`` and ``Link`` header, the page's "请改用"): found by
    session 9's outside tester, a retired article named its draft successor, title and id, to every reader."""
    if article.superseded_by is None:
        return None
    try:
        return readable_article(principal, load(article.superseded_by))
    except NotFoundError:
        return None


def usable_article(principal: Principal, article: Article) -> Article:
    """``article`` when ``principal`` may vote on it, count a use of it or close a ticket as deflected by it:
    readable (:func:`readable_article`) and published. The one rule for feedback, usage and deflection.

    Raises:
        NotFoundError: as :func:`readable_article`.
        ArticleNotPublishedError: a draft, in review or retired (409 ``article_not_published``): votes and uses
            count for the published text only.
    """
    readable_article(principal, article)
    if article.status != "published":
        raise ArticleNotPublishedError(
            f"Article {article.id} is {article.status}, not published: it takes no votes, uses or deflections."
        )
    return article


def readable_versions(
    principal: Principal, article: Article, versions: Sequence[ArticleVersion]
) -> list[ArticleVersion]:
    """The saved ``versions`` of ``article`` whose text ``principal`` may read: the article is readable now
    (:func:`readable_article`) and each version's own visibility (its front matter at the time: ``visibility`` and
    ``restricted_to``) lets them see it, so a text that was restricted or internal when it was saved stays so after
    the article is opened up; and a version saved as a draft or in review is an editor's, as the draft itself was
    (found by session 9's outside tester: once published, the draft's notes were readable by every requester).
    The one rule for version lists, versions and diffs (API and pages).

    Raises:
        NotFoundError: as :func:`readable_article`, for the article itself.
    """
    readable_article(principal, article)
    editor = principal.is_editor
    return [
        v
        for v in versions
        if article_visible(
            principal, str(v.fields.get("visibility") or article.visibility), v.fields.get("restricted_to") or ()
        )
        and (editor or v.fields.get("status") not in UNPUBLISHED)
    ]


def readable_version(principal: Principal, article: Article, version: ArticleVersion) -> ArticleVersion:
    """``version`` when :func:`readable_versions` keeps it.

    Raises:
        NotFoundError: the caller may not read it (the answer of a version that does not exist), or the article.
    """
    if not readable_versions(principal, article, [version]):
        raise NotFoundError(f"Article {article.id} has no version {version.version}.")
    return version


def visible_article(principal: Principal, article: Article) -> Article:
    """``article`` when ``principal`` may see it.

    Raises:
        NotFoundError: the caller may not see it; the message is the one of an article that does not exist.
    """
    if not article_visible(principal, article.visibility, article.restricted_to or ()):
        raise NotFoundError(missing_article(article.id))
    return article
