"""Redaction of personal data before ticket text reaches an article (DOMAIN.md, 安全管理; MLPS 2.0 level 2).

Always redacted, each replaced by a bracketed label so the text still reads:

- mobile numbers of mainland China (``13812345678``, ``+86 138-1234-5678``)        -> ``[手机号]``
- landlines with an area code, 400/800 numbers, and any number after a phone label  -> ``[电话]``
  (``010-62345678``, ``(0755)8765 4321``, ``电话：62345678 转 801``)
- resident ID-card numbers: 18 characters with a valid birth date (GB 11643-1999), 15-digit old ones -> ``[身份证号]``
- e-mail addresses                                                                -> ``[邮箱]``
- the value after an account or person label (联系人、报告人、申请人、用户、姓名、账号、工号、requester, user ...):
  a Chinese name, or an account / login name                                     -> ``[姓名]`` / ``[账号]``
- names and accounts known from the ticket itself (its requester field), wherever they occur -> ``[姓名]``

Redacted on request (settings ``redact_ip_addresses``, ``redact_host_names``): IPv4 / IPv6 addresses -> ``[IP]``,
fully qualified host names and asset-style host names (``SRV-BJ-DB01``) -> ``[主机名]``.

Identifiers that only look like numbers are kept: error codes (``0x80070005``, ``ORA-01555``), versions, dates,
ticket ids (``INC-20261129-0042``) and ports, because every pattern requires the number to stand alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Boundaries are ASCII-only: a number right after Chinese text (请拨打13812345678) still stands alone.
_NOT_WORD_BEFORE = r"(?<![A-Za-z0-9_.\-/])"
_NOT_WORD_AFTER = r"(?![A-Za-z0-9_\-/]|\.\d)"

MOBILE = re.compile(_NOT_WORD_BEFORE + r"(?:(?:\+|00)?86[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}" + _NOT_WORD_AFTER)
LANDLINE = re.compile(
    _NOT_WORD_BEFORE
    + r"(?:(?:\+|00)?86[\s\-]?)?(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3})[\s\-]?\d{3,4}[\s\-]?\d{4}"
    + r"(?:\s*(?:转|分机|ext\.?|x|-)\s*\d{1,5})?"
    + _NOT_WORD_AFTER
    + r"|"
    + _NOT_WORD_BEFORE
    + r"[48]00[\s\-]?\d{3}[\s\-]?\d{4}"
    + _NOT_WORD_AFTER
)
PHONE_LABEL = re.compile(
    r"((?:电话|座机|分机|手机|联系电话|联系方式|tel|phone|mobile)\s*(?:号码)?\s*[:：]?\s*)"
    r"([(（]?\+?\d[\d\s\-()（）]{5,}\d(?:\s*(?:转|分机|ext\.?)\s*\d{1,5})?)",
    re.I,
)
EXTENSION = re.compile(r"((?:分机号?|转)\s*[:：]?\s*)(\d{2,6})(?!\d)")
ID_CARD = re.compile(
    _NOT_WORD_BEFORE
    + r"(?:[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    + r"|[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})"
    + r"(?![A-Za-z0-9_])"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_CHINESE_NAME = r"[\u4e00-\u9fff]{2,4}?(?=$|[\s,，。；;、:：)）(（]|先生|女士|老师|经理|工|同事)"
_ACCOUNT = r"[A-Za-z][A-Za-z0-9._\-\\]{1,63}"
PERSON_LABEL = re.compile(
    r"((?:联系人|报告人|申请人|提交人|报修人|请求人|用户|使用人|姓名|员工|requester|reporter|contact|user|name)"
    r"\s*[:：]\s*)(" + _CHINESE_NAME + r"|" + _ACCOUNT + r")",
    re.I,
)
ACCOUNT_LABEL = re.compile(
    r"((?:(?:账号|帐号|账户|帐户|用户名|登录名|工号|域账号|AD\s*账号)\s*(?:是|为)?\s*[:：]?"
    r"|(?:account|login|username|user\s*id)\s*[:：])\s*)"  # English labels only with a colon: "account access"
    r"(" + _ACCOUNT + r"|\d{4,12})",
    re.I,
)
IPV4 = re.compile(r"(?<![\w.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\w.]|\.\d)")
IPV6_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![A-Za-z0-9_:])")
HOST = re.compile(
    r"(?<![\w.\-@])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?:com|cn|net|org|local|lan|corp|internal|intra|localdomain)(?![\w.\-])"
    r"|(?<![\w\-])[A-Z]{2,5}(?:-[A-Z0-9]{2,8}){1,3}\d(?![\w\-])"
)


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data in text (see module docstring); ``ips`` and ``hosts`` add network identifiers."""

    ips: bool = False
    hosts: bool = False

    def redact(self, text: str, known_names: Iterable[str] = ()) -> str:
        """``text`` with personal data replaced by labels; ``known_names`` (a ticket's requester ...) too."""
        for name in sorted({n.strip() for n in known_names if n and len(n.strip()) >= 2}, key=len, reverse=True):
            text = text.replace(name, "[姓名]")
        text = EMAIL.sub("[邮箱]", text)
        text = ID_CARD.sub("[身份证号]", text)
        text = PHONE_LABEL.sub(lambda m: m.group(1) + "[电话]", text)
        text = MOBILE.sub("[手机号]", text)
        text = LANDLINE.sub("[电话]", text)
        text = EXTENSION.sub(lambda m: m.group(1) + "[电话]", text)
        text = ACCOUNT_LABEL.sub(lambda m: m.group(1) + "[账号]", text)
        text = PERSON_LABEL.sub(lambda m: m.group(1) + ("[姓名]" if _is_chinese(m.group(2)) else "[账号]"), text)
        if self.ips:
            text = IPV6_CANDIDATE.sub(_ipv6, IPV4.sub("[IP]", text))
        if self.hosts:
            text = HOST.sub("[主机名]", text)
        return text


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)  # a time (10:30:00) or a MAC-like string, not an address
    return "[IP]"


def _is_chinese(value: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in value)
