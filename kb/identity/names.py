"""The one comparison form of account and group names.

Names are compared in Unicode NFKC (UAX #15: full-width ``ｓｅｃａｄｍ`` and ``secadm`` are one name), stripped and
case-folded. Every comparison of a name given by a caller with a stored one (accounts, logins and lockouts, "nobody
changes their own roles", groups named like roles) goes through :func:`fold_name`, so that no look-alike spelling
passes one check and matches another.
"""

from __future__ import annotations

import re
import unicodedata

#: An account name after :func:`fold_name`: 2 to 120 letters, digits, ``.``, ``_``, ``@`` or ``-``.
ACCOUNT_NAME = re.compile(r"^[\w.@-]{2,120}$")


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
