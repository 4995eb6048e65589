"""Identity (身份鉴别): accounts, the password policy, server-side sessions and the roles.

It sits at the level of :mod:`kb.articles` and :mod:`kb.search`: it imports only :mod:`kb.db`, :mod:`kb.models`,
:mod:`kb.config` and :mod:`kb.errors`; :mod:`kb.service` wires it.
"""
