"""The article lifecycle: draft -> in_review -> published -> retired, and the rules around it.

Allowed transitions (:data:`TRANSITIONS`), after KCS v6 practice (Consortium for Service Innovation, "KCS v6
Practices Guide", article states *Work in Progress*, *Not Validated*, *Validated*, *Archived*)::

    draft      -> in_review, retired
    in_review  -> draft (changes requested), published (approved), retired
    published  -> in_review (flagged for review), retired
    retired    -> draft (revived; goes through review again)

Publishing records the reviewer and sets the review-by date :data:`DEFAULT_REVIEW_DAYS` days ahead unless one is
given. Retiring may name a successor (``superseded_by``); search and ``GET /articles/{id}`` lead to it.
Imports are not held to the transitions: the files are the source of truth for imported articles.
"""

from __future__ import annotations

import datetime as dt

from kb.errors import TransitionError

#: Statuses an article can move to from each status (every status of :data:`kb.articles.content.STATUSES` is a key).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("in_review", "retired"),
    "in_review": ("draft", "published", "retired"),
    "published": ("in_review", "retired"),
    "retired": ("draft",),
}

#: Days from publication to the review-by date when none is given (a yearly review, the usual KCS cadence).
DEFAULT_REVIEW_DAYS = 365


def check_transition(current: str, requested: str) -> None:
    """Raise :class:`TransitionError` unless ``current -> requested`` is allowed (staying put always is)."""
    if requested != current and requested not in TRANSITIONS.get(current, ()):
        raise TransitionError("An article", current, requested, TRANSITIONS.get(current, ()))


def default_review_by(today: dt.date) -> dt.date:
    """The review-by date of an article published on ``today``."""
    return today + dt.timedelta(days=DEFAULT_REVIEW_DAYS)
