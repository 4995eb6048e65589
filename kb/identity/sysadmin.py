"""What the system administrator (系统管理员) may do to accounts and service tokens, and what is left to the console
(三员分立, GB/T 22239-2019 7.1.4.2 c and 7.1.5.1).

Through the API and the pages the system administrator manages the *business* accounts: creates them with business
roles (requester, agent, engineer, desk_lead, kb_editor), sets their resolver groups, disables and enables them,
and makes service tokens whose scopes open only what any requester sees (:data:`SYSADMIN_SCOPES`). The system
administrator never acts on an account that holds an administrator role — disabling the security or audit
administrator would switch off the oversight of the system administrator's own work — and never hands out
``article.internal``, which would let whoever holds the token (the system administrator included) read the desk's
internal articles. Both answer 403. Roles of existing accounts are the security administrator's
(:mod:`kb.identity.secadmin`); administrator accounts and tokens with ``article.internal`` are made, disabled and
enabled on the server's console (``kb users``, audited as the operating-system account that ran it).

Found by session 7's outside tester: the system administrator could disable the other administrators and make a
token with ``article.internal`` and ``search``.
"""

from __future__ import annotations

from collections.abc import Iterable

from kb.errors import ForbiddenError
from kb.identity.audit import AuditContext
from kb.identity.permissions import Permission
from kb.identity.roles import ADMIN_ROLES, is_admin

#: Channels of the server's console (``kb users``, first start), where the rules of this module do not apply: the
#: operator at the server sets up the 三员 themselves.
CONSOLE_CHANNELS = frozenset({"cli", "system"})
P = Permission
#: Every scope a service token may carry: searching and reading (public, or also internal) articles, suggestions,
#: opening tickets and deflecting them; never an administrator, editor or ticket-working permission.
SERVICE_SCOPES = frozenset({P.SEARCH, P.ARTICLE_READ, P.ARTICLE_INTERNAL, P.SUGGEST, P.TICKET_CREATE, P.TICKET_DEFLECT})
#: The scopes the system administrator may give a token through the API or the pages (all but article.internal).
SYSADMIN_SCOPES = SERVICE_SCOPES - {P.ARTICLE_INTERNAL}


def on_console(context: AuditContext) -> bool:
    """Whether ``context`` is the server's console (:data:`CONSOLE_CHANNELS`)."""
    return context.channel in CONSOLE_CHANNELS


def check_account_target(context: AuditContext, roles: Iterable[str]) -> None:
    """Refuse, off the console, to create, disable, enable or regroup an account with these ``roles``.

    Raises:
        ForbiddenError: ``roles`` hold one of :data:`kb.identity.roles.ADMIN_ROLES` and ``context`` is not the
            console (403).
    """
    if not on_console(context) and is_admin(roles):
        raise ForbiddenError(
            f"Accounts with an administrator role ({', '.join(ADMIN_ROLES)}) are managed on the server's console "
            "(kb users), not by the system administrator (三员分立); roles are the security administrator's."
        )


def check_token_scopes(context: AuditContext, scopes: Iterable[str]) -> None:
    """Refuse, off the console, a service token with a scope beyond :data:`SYSADMIN_SCOPES`.

    Raises:
        ForbiddenError: such a scope asked for outside the console (403).
    """
    beyond = sorted(set(scopes) & {s.value for s in SERVICE_SCOPES - SYSADMIN_SCOPES})
    if beyond and not on_console(context):
        raise ForbiddenError(
            f"A token with {', '.join(beyond)} opens the desk's internal articles: it is made on the server's "
            "console (kb users create-service), not by the system administrator (三员分立)."
        )
