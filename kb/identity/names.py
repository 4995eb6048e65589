"""The one comparison form of account and group names.

Names are compared in Unicode NFKC (UAX #15: full-width ``ｓｅｃａｄｍ`` and ``secadm`` are one name), stripped and
case-folded. Every comparison of a name given by a caller with a stored one (accounts, logins and lockouts, "nobody
changes their own roles", groups named like roles) goes through :func:`fold_name`, so that no look-alike spelling
passes one check and matches another.
"""

from __future__ import annotations

import unicodedata


def fold_name(name: str) -> str:
    """``name`` in NFKC, stripped and case-folded (no validation; :func:`kb.identity.accounts.normalize_username`
    validates account names)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()
