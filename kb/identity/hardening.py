"""Production mode and allow-lists (入侵防范, GB/T 22239-2019 7.1.4.4; 访问控制 7.1.4.2).

- :func:`check_production`: with ``KB_ENV=production`` the service refuses to start while the session cookie may
  travel without ``Secure`` (``KB_INSECURE_COOKIES``), the audit key is the development default or short, the
  data key sealing TOTP seeds (``KB_DATA_KEY``) is the development default, or the command line's actor is the
  development principal ``dev``.
- :func:`ip_allowed`: administrator routes (users, security settings, imports, the audit trail) accept only
  clients in ``KB_ADMIN_CIDRS`` and the list the security administrator stores (empty: any).
- :func:`check_sender_domain`: the e-mail intake accepts only senders of ``KB_EMAIL_SENDER_DOMAINS`` (empty: any).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from kb.config import DEVELOPMENT_DATA_KEY, Settings
from kb.errors import InsecureConfigurationError, InvalidInputError
from kb.identity.data_key import data_keys

#: The development default of ``KB_AUDIT_KEY`` (kb.config.Settings.audit_key).
DEVELOPMENT_AUDIT_KEY = str(Settings.model_fields["audit_key"].default)
#: The development principal: the command line's default actor (``KB_DEV_USER``) and the tests' user.
DEVELOPMENT_PRINCIPAL = "dev"
#: Shortest audit key accepted in production: 32 characters (256 bits of hex or 192 of base64).
MIN_PRODUCTION_KEY = 32


def production_problems(settings: Settings) -> list[str]:
    """What stops ``settings`` from running in production (empty: nothing, or not production)."""
    if settings.env != "production":
        return []
    problems = []
    if settings.insecure_cookies:
        problems.append("KB_INSECURE_COOKIES=true sends the session cookie without Secure")
    if settings.audit_key == DEVELOPMENT_AUDIT_KEY or len(settings.audit_key) < MIN_PRODUCTION_KEY:
        problems.append(f"KB_AUDIT_KEY is missing, the development default or shorter than {MIN_PRODUCTION_KEY}")
    if data_keys(settings.data_key)[0] == DEVELOPMENT_DATA_KEY:
        problems.append("KB_DATA_KEY is missing or its first (sealing) key is the development default")
    if settings.dev_user.casefold() == DEVELOPMENT_PRINCIPAL:
        problems.append("KB_DEV_USER is the development principal 'dev'; name the operator")
    return problems


def check_production(settings: Settings) -> None:
    """Refuse to start an insecure production service.

    Raises:
        InsecureConfigurationError: ``KB_ENV=production`` with any of :func:`production_problems`.
    """
    problems = production_problems(settings)
    if problems:
        raise InsecureConfigurationError("KB_ENV=production refuses to start: " + "; ".join(problems) + ".")


def ip_allowed(ip: str | None, cidrs: Sequence[str]) -> bool:
    """Whether client ``ip`` is inside one of ``cidrs`` (IPv4 or IPv6 networks); any IP when ``cidrs`` is empty,
    none when the IP is unknown or not an address."""
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(c, strict=False) for c in cidrs)


def check_cidrs(cidrs: Sequence[str]) -> list[str]:
    """``cidrs`` as normalised network strings (``10.1.0.0/16``).

    Raises:
        InvalidInputError: one is not an IPv4 or IPv6 network.
    """
    out = []
    for cidr in cidrs:
        try:
            out.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError as exc:
            raise InvalidInputError(f"{cidr!r} is not a network such as 10.1.0.0/16: {exc}") from exc
    return out


def check_sender_domain(sender: str, domains: Sequence[str]) -> None:
    """Accept a mail from ``sender`` (an address) only when its domain is one of ``domains`` (or a subdomain).

    Raises:
        InvalidInputError: the domain is not allowed (the SMTP layer answers 550; nothing is written).
    """
    if not domains:
        return
    domain = sender.rpartition("@")[2].strip().casefold().rstrip(">")
    if not any(domain == d or domain.endswith("." + d) for d in domains):
        raise InvalidInputError(f"Mail from the domain {domain or '(none)'} is not accepted by this help desk.")
