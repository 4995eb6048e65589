"""The one comparison form of account and group names.

Names are compared in Unicode NFKC (UAX #15: full-width ``ｓｅｃａｄｍ`` and ``secadm`` are one name), stripped and
case-folded. Every comparison of a name given by a caller with a stored one (accounts, logins and lockouts, "nobody
changes their own roles", groups named like roles) goes through :func:`fold_name`, so that no look-alike spelling
passes one check and matches another.

Some names are the server's own principals, recorded as actors in the audit trail and on rows, and never belong to
an account (:data:`RESERVED_NAMES`, :func:`check_new_account_name`; found by session 9's outside tester: a system
administrator could create ``kb``, ``system`` and ``desk-history``, whose audit rows then read as the first start
or the console, and whose roles switched the desk-history replay's ranking votes off).
"""

from __future__ import annotations

import re
import unicodedata

from kb.errors import ReservedNameError

#: An account name after :func:`fold_name`: 2 to 120 letters, digits, ``.``, ``_``, ``@`` or ``-``.
ACCOUNT_NAME = re.compile(r"^[\w.@-]{2,120}$")

#: The actor of changes made on the server's console (:data:`kb.identity.audit.CLI`).
CONSOLE_ACTOR = "cli"
#: The actor of the server's own work: the first start's administrator, TOTP resealing, idle accounts disabled.
SYSTEM_ACTOR = "kb"
#: The channel of the server's own jobs (:mod:`kb.identity.observer`), shown beside the actor in the trail.
SYSTEM_CHANNEL = "system"
#: The author of the bundled synonym list loaded at the first start (:mod:`kb.search.synonyms`; not audited:
#: it is the install's data, like the migrations).
BUNDLED_ACTOR = "bundled"
#: The actor of a ticket import run on the console (:mod:`kb.identity.observer`: an API import is its caller's).
IMPORT_ACTOR = "import"
#: The actor of the desk-history replay (:mod:`kb.desk.history`), whose closures vote although it holds no
#: account (:func:`kb.desk.resolved_votes.votes_by`): an account of that name would turn its votes off.
HISTORY_ACTOR = "desk-history"
#: Names no account may take: the server's own principals above. Not reserved: ``dev``, the command line's
#: development default actor (``KB_DEV_USER``; production refuses to start with it, kb.identity.hardening) and the
#: tests' account; names with ``@`` (a desk account named by its e-mail address is how a desk member's mail
#: threads onto tickets, kb.desk.senders). Principals with a ``:`` (``svc:``, ``im:``, ``mail:``, ``os:``) and
#: ``(unknown)`` / ``(channel)`` are not account names at all (:data:`ACCOUNT_NAME`).
RESERVED_NAMES = frozenset({CONSOLE_ACTOR, SYSTEM_ACTOR, SYSTEM_CHANNEL, BUNDLED_ACTOR, IMPORT_ACTOR, HISTORY_ACTOR})
#: Prefixes of principals that are not accounts: service accounts, the IM bot, e-mail senders, console OS users.
RESERVED_PREFIXES = ("svc:", "im:", "mail:", "os:")


def fold_name(name: str) -> str:
    """``name`` in NFKC, stripped and case-folded (no validation; :func:`kb.identity.accounts.normalize_username`
    validates account names)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def requester_name(name: str) -> str:
    """How a ticket's requester is stored when the desk names one: in the form accounts are stored
    (:func:`fold_name`) when it could be an account name, so that the row rule and the SQL rule of
    :mod:`kb.identity.scopes` both find the requester's tickets (``ＲＥＱ２`` is ``req2``); anything else (a caller's
    name with a space, ``QQ:10001``) only in NFKC, stripped."""
    folded = fold_name(name)
    return folded if ACCOUNT_NAME.fullmatch(folded) else unicodedata.normalize("NFKC", name).strip()


def check_new_account_name(name: str) -> None:
    """Refuse a name for a new account that is one of the server's own principals (module docstring).

    Args:
        name: the name after :func:`fold_name`.

    Raises:
        ReservedNameError: ``name`` is in :data:`RESERVED_NAMES` or starts with one of :data:`RESERVED_PREFIXES`
            (422 ``reserved_name``).
    """
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        raise ReservedNameError(
            f"{name!r} is a name the server records for itself (one of {', '.join(sorted(RESERVED_NAMES))}, or a "
            f"{'/'.join(RESERVED_PREFIXES)} principal); choose another user name."
        )
