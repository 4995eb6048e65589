"""Password hashing (argon2id through ``pwdlib``, never hand-written) and the password policy.

The policy's defaults are the 等保二级 profile (GB/T 22239-2019 7.1.4.1 a:
身份标识具有唯一性，身份鉴别信息具有复杂度要求并定期更换): at least 8 characters from three of four classes
(lower case, upper case, digits, other), not in the bundled common-password list, not the user name, at least
strength 3 of 4 by the ``zxcvbn`` estimator (Dropbox's, through the ``zxcvbn`` package: dictionary words, names,
keyboard walks, dates, repeats and l33t substitutions, which the list and the classes miss — ``Password123!``
passes both and scores 1), none of the last 5 passwords, changed every 90 days. Every number is a setting (see
:class:`kb.config.Settings`).
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import zxcvbn
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from kb.config import DATA_DIR, Settings
from kb.errors import WeakPasswordError
from kb.identity.names import fold_name

#: The bundled list of common passwords, one a line (``#`` starts a comment), compared case-folded.
COMMON_PASSWORDS = DATA_DIR / "common-passwords.txt"

#: zxcvbn's scores run from 0 (guessable in under 10^3 guesses) to 4 (over 10^10); 3 is "safely unguessable:
#: moderate protection from offline slow-hash scenario" (zxcvbn README), the default minimum.
MAX_SCORE = 4
#: zxcvbn looks at the first this many characters (its default, bounding its time on long input).
ZXCVBN_MAX_LENGTH = 72
_NAME_PARTS = re.compile(r"[._@-]+")

#: Verifies any argon2 hash: the parameters are read from the PHC string itself.
_VERIFIER = PasswordHash((Argon2Hasher(),))


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism),))


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    """A hash of a random password, verified against when the user does not exist, so both cost the same time."""
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def one_time_password(length: int = 16) -> str:
    """A random password meeting every default policy rule: letters of both cases, digits and a symbol."""
    alphabet = string.ascii_letters + string.digits
    while True:
        body = "".join(secrets.choice(alphabet) for _ in range(length - 1)) + secrets.choice("!#%+-=@")
        if any(c.islower() for c in body) and any(c.isupper() for c in body) and any(c.isdigit() for c in body):
            return body


@lru_cache(maxsize=4)
def _common(path: Path) -> frozenset[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def character_classes(password: str) -> int:
    """How many of the four classes ``password`` uses: lower-case letters, upper-case letters, digits, other."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


@dataclass(frozen=True)
class PasswordPolicy:
    """The rules a new password must meet.

    Args:
        min_length: fewest characters (after NFKC normalisation).
        min_classes: fewest character classes of :func:`character_classes`, 1 to 4.
        history: how many earlier passwords of the user may not be reused (0: any).
        max_age_days: days after which the password must be changed at login (0: never).
        min_score: lowest zxcvbn strength score accepted, 0 (no check) to :data:`MAX_SCORE`.
        common: the common-password list file.
        hash_time_cost, hash_memory_kib, hash_parallelism: argon2id parameters (iterations, memory in KiB,
            lanes); the defaults are the OWASP Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1), about
            65 ms a hash here, where pwdlib's defaults (64 MiB, t=3, p=4) took about 450 ms on 2 shared cores.
    """

    min_length: int = 8
    min_classes: int = 3
    history: int = 5
    max_age_days: int = 90
    min_score: int = 3
    common: Path = COMMON_PASSWORDS
    hash_time_cost: int = 2
    hash_memory_kib: int = 19456
    hash_parallelism: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordPolicy:
        """The policy named by ``settings`` (``KB_PASSWORD_*``)."""
        return cls(
            settings.password_min_length,
            settings.password_min_classes,
            settings.password_history,
            settings.password_max_age_days,
            min_score=settings.password_min_score,
            hash_time_cost=settings.password_hash_time_cost,
            hash_memory_kib=settings.password_hash_memory_kib,
            hash_parallelism=settings.password_hash_parallelism,
        )

    def hash(self, password: str) -> str:
        """The argon2id PHC string of ``password`` (random salt, this policy's parameters)."""
        return _hasher(self.hash_time_cost, self.hash_memory_kib, self.hash_parallelism).hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        """True when ``password`` matches ``password_hash``. With ``None`` (no such user) a dummy hash with the
        same parameters is verified instead, so the answer takes the same time and is always False."""
        if password_hash is None:
            _VERIFIER.verify(password, _dummy_hash(self.hash_time_cost, self.hash_memory_kib, self.hash_parallelism))
            return False
        return _VERIFIER.verify(password, password_hash)

    def check(self, username: str, password: str, earlier_hashes: Iterable[str] = ()) -> None:
        """Refuse ``password`` for ``username`` unless it meets every rule.

        Args:
            username: the (case-folded) user name; the password may not equal it, ignoring case.
            password: the proposed password.
            earlier_hashes: the user's current and earlier password hashes, newest first; the first
                ``history`` are checked for reuse.

        Raises:
            WeakPasswordError: naming the first rule that fails (never echoing the password).
        """
        normal = unicodedata.normalize("NFKC", password)
        if len(normal) < self.min_length:
            raise WeakPasswordError(f"The password needs at least {self.min_length} characters.")
        if character_classes(normal) < self.min_classes:
            raise WeakPasswordError(
                f"The password needs characters from at least {self.min_classes} of: lower-case letters, "
                "upper-case letters, digits, other characters."
            )
        if normal.casefold() == fold_name(username):
            raise WeakPasswordError("The password may not be the user name.")
        if normal.casefold() in _common(self.common):
            raise WeakPasswordError("The password is on the list of common passwords; choose another.")
        self._check_strength(username, normal)
        for earlier in list(earlier_hashes)[: self.history]:
            if _VERIFIER.verify(password, earlier):
                raise WeakPasswordError(f"The password was used recently; the last {self.history} may not be reused.")

    def _check_strength(self, username: str, password: str) -> None:
        """Refuse ``password`` when zxcvbn scores it below ``min_score`` (the user name and its parts count as
        known words). Raises WeakPasswordError with zxcvbn's warning, which never repeats the password."""
        if self.min_score <= 0:
            return
        hints = [username, *(part for part in _NAME_PARTS.split(username) if len(part) > 1)]
        result = zxcvbn.zxcvbn(password, user_inputs=hints, max_length=ZXCVBN_MAX_LENGTH)
        score = int(result["score"])
        if score < self.min_score:
            warning = str(result["feedback"].get("warning") or "")
            hint = " ".join(str(s) for s in result["feedback"].get("suggestions") or [])
            detail = " ".join(part for part in (warning, hint) if part)
            raise WeakPasswordError(
                f"The password is too easy to guess (strength {score} of {MAX_SCORE}, at least {self.min_score} "
                f"needed){': ' + detail if detail else '.'} Longer passphrases of uncommon words are stronger."
            )
