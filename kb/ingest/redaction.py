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
- credentials (:mod:`kb.ingest.credentials`: values after 密码 / 密碼 / 口令 / PIN码 / password / pwd / token /
  api_key ..., ``mysql -pPASS``, ``curl -u user:pass``, ``scheme://user:pass@``, AWS / ``sk-`` / GitHub keys),
  always                                                                          -> ``[密码]`` / ``[密钥]``
- mobile and landline numbers written in Chinese digits (``一三八一二三四五六七八``, ``幺``, ``〇``, ``两``): a run of
  7 to 12 such digits                                                             -> ``[手机号]`` / ``[电话]``
- bank card numbers: 16 to 19 digits, grouped or not, that pass the Luhn check (ISO/IEC 7812-1) -> ``[银行卡号]``
- QQ numbers and WeChat ids after their labels (``QQ 12345678``, ``微信号 wxid_abc123``) -> ``[QQ号]`` / ``[微信号]``
- a name right after 联系人/报修人/申请人/报告人/提交人 without a colon (``联系人张三``), or before 的账号/的电脑/...
  (``王五的账号``), or after 请联系/请找/请致电 (``请联系王小明``, found by session 9's outside tester), when it starts
  with a common Chinese surname (so ``申请人身份证`` and ``请联系管理员`` stay)                       -> ``[姓名]``

Full-width digits and Latin letters (``１１０１０５…Ｘ``) are folded to ASCII first (their NFKC form; other full-width
characters such as ``，`` and ``：`` are left as written so the text reads the same). :func:`holds_credential` tells
whether a text carried a credential (the same rules as :meth:`Redactor.redact`): such a ticket's text is never shown
in suggestions or similar tickets.

Not redacted: a name with no label before it, no 请联系 / 请找 / 请致电 before it and no 的账号 after it (``王小明说``):
telling such a name from ordinary words needs a named-entity model, not a pattern (known names from the ticket's
requester field are redacted wherever they occur).

Redacted on request (settings ``redact_ip_addresses``, ``redact_host_names``): IPv4 / IPv6 addresses -> ``[IP]``,
fully qualified host names and asset-style host names (``SRV-BJ-DB01``) -> ``[主机名]``.

Identifiers that only look like numbers are kept: error codes (``0x80070005``, ``ORA-01555``), versions, dates,
ticket ids (``INC-20261129-0042``) and ports, because every pattern requires the number to stand alone.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from kb.ingest.credentials import redact_credentials

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
CARD_CANDIDATE = re.compile(r"(?<![\d\-])\d{4}(?:[ \-]?\d){12,15}(?![\d\-])")
QQ_LABEL = re.compile(r"((?:QQ|扣扣|企鹅)\s*(?:号码|号)?\s*(?:是|为)?\s*[:：]?\s*)([1-9]\d{4,11})(?!\d)", re.I)
WECHAT_LABEL = re.compile(
    r"((?:微信|WeChat|weixin|vx|wx)\s*(?:号|id|ID)?\s*(?:是|为)?\s*[:：]?\s*)"
    r"(wxid_[A-Za-z0-9_\-]{3,30}|[A-Za-z][A-Za-z0-9_\-]{5,19}|1[3-9]\d{9}|[1-9]\d{4,11})(?![A-Za-z0-9_\-])",
    re.I,
)
#: The most common Chinese surnames (about 85% of people; 公安部 户籍 statistics), single and double.
_SURNAMES = (
    "欧阳|司马|上官|诸葛|东方|皇甫|令狐|慕容|"
    "王|李|张|刘|陈|杨|黄|赵|吴|周|徐|孙|马|朱|胡|郭|何|林|罗|高|郑|梁|谢|宋|唐|许|韩|邓|冯|曹|彭|曾|肖|田|董|潘|"
    "袁|蔡|蒋|余|于|杜|叶|程|魏|苏|吕|丁|任|卢|姚|沈|钟|姜|崔|谭|陆|范|汪|廖|石|金|韦|贾|夏|付|方|邹|熊|白|孟|秦|"
    "邱|侯|江|尹|薛|闫|段|雷|龙|黎|史|陶|贺|毛|郝|顾|龚|邵|万|覃|武|钱|戴|严|欧|莫|孔|向|常|汤|康|易|乔|赖|文"
)
_NAME_END = (
    r"(?=$|[\s,，。；;、:：)）(（.!！?？]|先生|女士|老师|经理|工|同事|的|反映|反馈|来电|报修|称|说|电话|手机"
    r"|申请|需要|要求|无法|不能|在|于|和|与)"
)
_SURNAMED = r"((?:" + _SURNAMES + r")[\u4e00-\u9fff]{1,2}?)"
NAME_NO_COLON = re.compile(r"((?:联系人|报修人|申请人|报告人|提交人|请求人|使用人)\s*)" + _SURNAMED + _NAME_END)
NAME_AFTER_ASK = re.compile(r"((?:请联系|请找|请致电|请咨询|联系人为|请转告)\s*)" + _SURNAMED + _NAME_END)
NAME_BEFORE_OWN = re.compile(
    r"(?<![\u4e00-\u9fff])" + _SURNAMED + r"(?=的(?:账号|帐号|账户|电脑|邮箱|手机|密码|工号|笔记本))"
)
#: Digits as said on the phone (幺 for 1, 两 for 2, 〇 / 零 for 0), Chinese or mixed with ASCII digits.
_CHINESE_DIGITS = {"〇": "0", "零": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5"}
_CHINESE_DIGITS |= {"六": "6", "七": "7", "八": "8", "九": "9"}
_DIGIT = "[0-9" + "".join(_CHINESE_DIGITS) + "]"
CHINESE_DIGIT_RUN = re.compile(
    r"(?<![0-9" + "".join(_CHINESE_DIGITS) + r"])" + _DIGIT + r"(?:[\s\-]?" + _DIGIT + r"){6,11}(?!" + _DIGIT + r")"
)
_FULL_WIDTH_ALNUM = {cp: unicodedata.normalize("NFKC", chr(cp)) for cp in range(0xFF10, 0xFF5B) if chr(cp).isalnum()}

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
        text = fold_full_width(text)
        text = redact_credentials(text)
        for name in sorted({n.strip() for n in known_names if n and len(n.strip()) >= 2}, key=len, reverse=True):
            text = text.replace(name, "[姓名]")
        text = EMAIL.sub("[邮箱]", text)
        text = ID_CARD.sub("[身份证号]", text)
        text = CARD_CANDIDATE.sub(_bank_card, text)
        text = QQ_LABEL.sub(lambda m: m.group(1) + "[QQ号]", text)
        text = WECHAT_LABEL.sub(lambda m: m.group(1) + "[微信号]", text)
        text = PHONE_LABEL.sub(lambda m: m.group(1) + "[电话]", text)
        text = MOBILE.sub("[手机号]", text)
        text = LANDLINE.sub("[电话]", text)
        text = CHINESE_DIGIT_RUN.sub(_chinese_phone, text)
        text = EXTENSION.sub(lambda m: m.group(1) + "[电话]", text)
        text = ACCOUNT_LABEL.sub(lambda m: m.group(1) + "[账号]", text)
        text = PERSON_LABEL.sub(lambda m: m.group(1) + ("[姓名]" if _is_chinese(m.group(2)) else "[账号]"), text)
        text = NAME_NO_COLON.sub(lambda m: m.group(1) + "[姓名]", text)
        text = NAME_AFTER_ASK.sub(lambda m: m.group(1) + "[姓名]", text)
        text = NAME_BEFORE_OWN.sub("[姓名]", text)
        if self.ips:
            text = IPV6_CANDIDATE.sub(_ipv6, IPV4.sub("[IP]", text))
        if self.hosts:
            text = HOST.sub("[主机名]", text)
        return text


def fold_full_width(text: str) -> str:
    """``text`` with full-width digits and Latin letters (U+FF10..U+FF5A) replaced by their NFKC (ASCII) form."""
    return text.translate(_FULL_WIDTH_ALNUM)


def holds_credential(text: str) -> bool:
    """True when ``text`` carries a credential (:func:`kb.ingest.credentials.redact_credentials` would change its
    full-width-folded form: the rules :meth:`Redactor.redact` applies). A ticket whose text does is never shown in
    suggestions or similar tickets."""
    if not text:
        return False
    folded = fold_full_width(text)
    return redact_credentials(folded) != folded


def luhn_ok(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812-1 annex B) on a string of digits: from the right, double every second digit,
    subtract 9 from results over 9; valid when the sum is divisible by 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _bank_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[银行卡号]" if 16 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


def _chinese_phone(match: re.Match[str]) -> str:
    """``[手机号]`` / ``[电话]`` for a run of 7-12 digits holding a Chinese one (ASCII-only runs are the other
    patterns' work); other runs unchanged."""
    run = match.group(0)
    if not any(ch in _CHINESE_DIGITS for ch in run):
        return run
    digits = "".join(_CHINESE_DIGITS.get(ch, ch) for ch in run if not ch.isspace() and ch != "-")
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return "[手机号]"
    return "[电话]" if 7 <= len(digits) <= 12 else run


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)  # a time (10:30:00) or a MAC-like string, not an address
    return "[IP]"


def _is_chinese(value: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in value)
