"""Errors raised by kb. Library code raises only these; the API maps each class to one HTTP status.

::

    KBError                      500  internal_error
    ├── UnauthorizedError        401  unauthorized (no, expired or unknown session or token; wrong password)
    ├── NotFoundError            404  not_found
    ├── ForbiddenError           403  forbidden
    │   └── PasswordChangeRequiredError 403 must_change_password (one-time or expired password)
    ├── ConflictError            409  conflict
    │   └── TransitionError      409  illegal_transition (articles and tickets; adds current, requested, allowed)
    ├── InvalidInputError        422  invalid_input
    │   ├── QueryTooLongError    422  query_too_long
    │   ├── ArticleFormatError   422  invalid_article
    │   ├── WeakPasswordError    422  weak_password (the password policy refuses it; the detail says why)
    │   ├── ReservedNameError    422  reserved_name (a new account named like one of the server's own principals)
    │   ├── UnknownGroupError    422  unknown_group (not a resolver group the desk knows)
    │   ├── UnknownAssigneeError 422  unknown_assignee (no enabled account that may work tickets)
    │   └── AssigneeNotInGroupError 422 assignee_not_in_group
    ├── AccountLockedError       423  account_locked (too many failed logins)
    ├── RateLimitedError         429  rate_limited (too many requests from one client)
    ├── PayloadTooLargeError     413  payload_too_large
    ├── IndexMismatchError       503  index_mismatch
    ├── IndexUnavailableError    503  index_unavailable
    ├── EmbeddingModelError      503  model_unavailable
    ├── DataKeyError             503  data_key_mismatch (KB_DATA_KEY cannot open a stored secret)
    └── InsecureConfigurationError 500 insecure_configuration (KB_ENV=production refuses to start)

Third-party exceptions (whoosh, faiss, SQLAlchemy, YAML) are translated once, where they are caught,
with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence


class KBError(Exception):
    """Base class. ``code`` is machine readable; the message is a sentence a user can act on."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extra(self) -> dict[str, object]:
        """Machine-readable details added to the JSON error beside ``error`` and ``detail`` (none by default)."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers of the error answer (none by default; ``Retry-After`` for a 429)."""
        return {}


class UnauthorizedError(KBError):
    """The caller is not authenticated: no session or token, an expired or ended one, or wrong credentials."""

    code = "unauthorized"
    status = 401


class NotFoundError(KBError):
    """A named thing (article, version) does not exist."""

    code = "not_found"
    status = 404


class ForbiddenError(KBError):
    """The acting user's roles do not allow this (for example reading drafts without the editor role)."""

    code = "forbidden"
    status = 403


class PasswordChangeRequiredError(ForbiddenError):
    """The user logged in with a one-time or expired password and must change it (``POST /auth/password``)
    before doing anything else."""

    code = "must_change_password"


class ConflictError(KBError):
    """The request conflicts with the current state (duplicate key, stale version)."""

    code = "conflict"
    status = 409


class ArticleNotPublishedError(ConflictError):
    """A vote, use or deflection for an article that is not published (draft, in review, retired)."""

    code = "article_not_published"


class SupersedeCycleError(ConflictError):
    """Retiring an article in favour of one that its own chain of successors leads back from."""

    code = "supersede_cycle"


class TransitionError(ConflictError):
    """A status change a workflow does not allow (article lifecycle, ticket workflow); ``allowed`` lists the
    statuses reachable from ``current``."""

    code = "illegal_transition"

    def __init__(self, thing: str, current: str, requested: str, allowed: Sequence[str]) -> None:
        self.current = current
        self.requested = requested
        self.allowed = list(allowed)
        reachable = ", ".join(self.allowed) or "none"
        super().__init__(f"{thing} cannot go from {current} to {requested}; from {current} it can go to: {reachable}.")

    def extra(self) -> dict[str, object]:
        """``current``, ``requested`` and ``allowed`` statuses, for the JSON error."""
        return {"current": self.current, "requested": self.requested, "allowed": self.allowed}


class InvalidInputError(KBError):
    """The input is malformed or out of range."""

    code = "invalid_input"
    status = 422


class QueryTooLongError(InvalidInputError):
    """A search query is longer than :data:`kb.config.MAX_QUERY_CHARS` characters."""

    code = "query_too_long"


class ArticleFormatError(InvalidInputError):
    """An article's Markdown or front matter cannot be read (bad YAML, bad encoding, no title)."""

    code = "invalid_article"


class WeakPasswordError(InvalidInputError):
    """A new password the password policy refuses (too short, too few character classes, common, reused)."""

    code = "weak_password"


class ReservedNameError(InvalidInputError):
    """A new account's name is one the server records for its own principals
    (:data:`kb.identity.names.RESERVED_NAMES`)."""

    code = "reserved_name"


class UnknownGroupError(InvalidInputError):
    """A ticket assigned or escalated to a resolver group the desk does not know (kb.desk.resolver_groups)."""

    code = "unknown_group"


class UnknownAssigneeError(InvalidInputError):
    """A ticket assigned to someone who is not an enabled account allowed to work tickets."""

    code = "unknown_assignee"


class AssigneeNotInGroupError(InvalidInputError):
    """A ticket assigned to a person who is not a member of the resolver group it is assigned to."""

    code = "assignee_not_in_group"


class AccountLockedError(KBError):
    """Too many failed logins for this user name within the window; the same answer whether or not it exists."""

    code = "account_locked"
    status = 423


class RateLimitedError(KBError):
    """Too many requests from one client within the rate limit's window; ``retry_after`` is how long to wait, in
    whole seconds (the ``Retry-After`` header, RFC 9110 10.2.3; None: not known)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in seconds when known."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class PayloadTooLargeError(KBError):
    """An article body is larger than the documented maximum."""

    code = "payload_too_large"
    status = 413


class IndexMismatchError(KBError):
    """The saved index was built with other settings (model, dimension, format); rebuild it."""

    code = "index_mismatch"
    status = 503


class IndexUnavailableError(KBError):
    """The index could not be read or written."""

    code = "index_unavailable"
    status = 503


class EmbeddingModelError(KBError):
    """The embedding model cannot be found or loaded."""

    code = "model_unavailable"
    status = 503


class DataKeyError(KBError):
    """A secret stored sealed (a TOTP seed) cannot be opened with any key of ``KB_DATA_KEY``: the key it was
    sealed with was changed or dropped (kb.identity.data_key). A server configuration fault, not the caller's."""

    code = "data_key_mismatch"
    status = 503


class InsecureConfigurationError(KBError):
    """Production mode (``KB_ENV=production``) refuses to start with an insecure setting; the message lists them."""

    code = "insecure_configuration"
