"""Masking of phone and ID-card numbers (个人信息保护, GB/T 22239-2019 7.1.4.10) for callers who do not need them.

Mainland mobile numbers keep their first 3 and last 4 digits (``138****5678``), landlines their last 4
(``****4321``) and resident ID-card numbers their region (first 6) and last 4 (``110105********8876``), as the
display form of GB/T 35273-2020 (个人信息去标识化, 附录 A) suggests. The patterns are redaction's
(:mod:`kb.ingest.redaction`), after folding full-width digits. Analysis exports are always masked; a ticket is
shown unmasked only to callers whose roles grant ``personal_data`` (the desk) and to its own requester.
"""

from __future__ import annotations

import re
from typing import Any

from kb.identity.names import fold_name
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal
from kb.ingest.redaction import ID_CARD, LANDLINE, MOBILE, fold_full_width

_DIGIT = re.compile(r"\d")


def _keep(value: str, head: int, tail: int) -> str:
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    hidden = set(digits[head : len(digits) - tail])
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


def mask_personal(text: str) -> str:
    """``text`` with mobile, landline and ID-card numbers masked (see module docstring)."""
    text = fold_full_width(text)
    text = ID_CARD.sub(lambda m: _keep(m.group(0), 6, 4), text)
    text = MOBILE.sub(lambda m: _keep(m.group(0), len(_DIGIT.findall(m.group(0))) - 8, 4), text)
    return LANDLINE.sub(lambda m: _keep(m.group(0), 0, 4), text)


def mask_json(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with :func:`mask_personal` applied to every string."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    return value


def needs_masking(principal: Principal, requester: str | None) -> bool:
    """Whether ``principal`` sees a ticket of ``requester`` masked: not the desk (``personal_data``) and not
    the requester themself."""
    own = fold_name(requester or "") == principal.username
    return not own and not principal.may(Permission.PERSONAL_DATA)
