"""Credentials in ticket text: the patterns that find them and the one function that replaces them.

A credential is replaced by ``[密码]`` (a password, PIN or one-time code) or ``[密钥]`` (an API key, token or
private key); the label or the command before it stays, so the text still reads (``mysql -uroot -p[密码]``). The
classes, each found by session 9's outside tester in tickets that reached a distilled draft unredacted:

- a value after a password label: 密码 / 密碼 / 口令 / PIN码 / 授权码 / 验证码 / 密钥 / 私钥 / 令牌 (with 初始, 新,
  临时 ... before, 是 / 为 / 改为 / ``:`` / ``=`` after, or neither); ``password`` / ``passwd`` / ``pwd`` /
  ``passcode`` with ``:``, ``=``, ``is`` or a plain space (after a space only a value holding a digit or one of
  ``!@#$%^&*+?``, so ``password policy`` and ``password reset`` stay); ``token`` / ``secret`` / ``api_key`` /
  ``apikey`` / ``access_key`` / ``secret_key`` / ``client_secret`` / ``access_token`` ... with ``:`` or ``=``
  (``token expired`` stays); environment variables such as ``MYSQL_ROOT_PASSWORD=``, ``PGPASSWORD=``,
  ``GITHUB_TOKEN=``;
- command-line passwords: ``-pPASS`` of the MySQL / MariaDB clients (attached to ``-p``: ``-p PASS`` asks for the
  password and names a database), ``sshpass -p PASS``, ``curl -u user:pass`` / ``--user user:pass`` (the user
  stays), ``--password=PASS``;
- the password in a URL's userinfo, ``scheme://user:pass@host`` (``-> scheme://user:[密码]@host``);
- keys recognisable by their shape wherever they stand: AWS access key ids (``AKIA`` / ``ASIA`` + 16, AWS IAM
  documentation "unique identifier prefixes"), ``sk-…`` / ``sk_live_…`` API keys (OpenAI, Stripe), GitHub tokens
  (``ghp_`` / ``gho_`` / ``ghu_`` / ``ghs_`` / ``ghr_`` + 36, ``github_pat_``), Slack tokens (``xox?-``), JSON Web
  Tokens (three base64url parts, the first ``eyJ``), ``Bearer`` tokens, and PEM private key blocks.

Kept: ``-h 10.2.3.4``, ``-P 3306``, ``docker run -p8080:80``, ``http://host:8080/``, versions, error codes, and a
label with no value after it (``密码错误``, ``提示输入密码。``, ``PIN码错误``). The text is expected full-width-folded
(:func:`kb.ingest.redaction.fold_full_width`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

PASSWORD = "[密码]"
KEY = "[密钥]"

# Printable ASCII without spaces: 密码错误 or 提示输入密码。 hold no value.
_VALUE = r"([!-~]{3,128})"
# After a bare space only a value that looks made up: a digit or a symbol in it, not a path (pwd /var/log).
_SPACED_VALUE = r"(?=[^\s/~][!-~]{5,127}(?![!-~]))(?=[!-~]*[\d!@#$%^&*+?])([!-~]{6,128})"
_BEFORE = r"(?<![A-Za-z0-9])"

CHINESE_LABEL = re.compile(
    r"((?:初始|新|旧|舊|临时|臨時|登录|登錄|登陆|登入|开机|開機|管理员|管理員|数据库|數據庫|root|wifi|Wi-?Fi)?"
    r"(?:密码|密碼|口令|PIN\s*[码碼]|授权码|授權碼|验证码|驗證碼|密钥|密鑰|秘钥|私钥|私鑰|令牌)"
    r"\s*(?:是|为|為|改为|改為|设为|設為|设置为|設置為|重置为|重置為)?\s*[:：=]?\s*)" + _VALUE,
    re.I,
)
PASSWORD_LABEL = re.compile(
    _BEFORE
    + r"((?:password|passwd|passcode|pwd|pass)[\"']?\s*(?:is\s+|[:：=]\s*))"
    + _VALUE
    + r"|"
    + _BEFORE
    + r"((?:password|passwd|passcode|pwd)\s+)"
    + _SPACED_VALUE,
    re.I,
)
KEY_LABEL = re.compile(
    _BEFORE + r"((?:aws_)?(?:secret_access_key|access_key_id|access[_-]?key|secret[_-]?key|api[_-]?key|api[_-]?token"
    r"|app[_-]?secret|client[_-]?secret|auth[_-]?token|access[_-]?token|refresh[_-]?token|private[_-]?key"
    r"|token|secret)[\"']?\s*[:：=]\s*)" + _VALUE,
    re.I,
)
ENV_SECRET = re.compile(r"(\b[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY)[A-Z0-9_]*=)" + _VALUE)
MYSQL_FLAG = re.compile(r"(\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlsh|mariadb)\b[^\n;|&]*?\s-p)([^\s]{1,128})")
SSHPASS_FLAG = re.compile(r"(\bsshpass\s+-p\s*)(\S{1,128})")
USER_FLAG = re.compile(r"((?<![\w-])(?:-u|--user)\s*['\"]?[^\s:'\"]{1,64}:)([^\s'\"]{1,128})")
URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s/:@]{1,64}:)([^\s/@]{1,128})(?=@)")
KEY_SHAPES = re.compile(
    _BEFORE + r"(?:(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|sk-[A-Za-z0-9_\-]{12,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
    r"(?![A-Za-z0-9])"
)
BEARER = re.compile(r"(\bBearer\s+)([A-Za-z0-9._~+/\-]{16,}=*)")
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)


def _keep_label(label: str) -> Callable[[re.Match[str]], str]:
    """A replacement keeping the match's first non-empty group (the label) and putting ``label`` for the value."""

    def replace(match: re.Match[str]) -> str:
        prefix = next((g for g in match.groups() if g is not None), "")
        return prefix + label

    return replace


#: (pattern, replacement) in the order they apply: labelled values first, then flags, URLs and key shapes.
RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (PRIVATE_KEY_BLOCK, lambda _m: KEY),
    (CHINESE_LABEL, lambda m: m.group(1) + (KEY if re.search(r"钥|鑰|令牌", m.group(1)) else PASSWORD)),
    (PASSWORD_LABEL, _keep_label(PASSWORD)),
    (KEY_LABEL, _keep_label(KEY)),
    (ENV_SECRET, _keep_label(KEY)),
    (MYSQL_FLAG, _keep_label(PASSWORD)),
    (SSHPASS_FLAG, _keep_label(PASSWORD)),
    (USER_FLAG, _keep_label(PASSWORD)),
    (URL_USERINFO, _keep_label(PASSWORD)),
    (BEARER, _keep_label(KEY)),
    (KEY_SHAPES, lambda _m: KEY),
)


def redact_credentials(text: str) -> str:
    """``text`` (full-width-folded) with every credential of the module docstring replaced by ``[密码]`` or
    ``[密钥]``, labels, commands and user names kept."""
    for pattern, replace in RULES:
        text = pattern.sub(replace, text)
    return text
