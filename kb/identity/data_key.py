"""Secrets kept at rest in the database, sealed with ``KB_DATA_KEY`` (鉴别数据的存储保密性: TOTP seeds are
authentication data; GB/T 22239-2019 asks it from level 3, 8.1.4.8, and kb does it at level 2 too).

The one secret kb must be able to read back is the TOTP seed (RFC 6238 needs it to compute the expected code;
passwords and tokens are stored as hashes instead). It is sealed with Fernet (AES-128-CBC with HMAC-SHA256,
https://github.com/fernet/spec) from the ``cryptography`` package, never with code of our own.

``KB_DATA_KEY`` is one or more Fernet keys (32 random bytes in URL-safe base64, as printed by
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``), separated by
commas. The first seals; every key in the list opens (``MultiFernet``). To rotate, put a new key first and keep
the old ones after it: at its next start the service reseals every stored secret with the new key
(:meth:`kb.identity.accounts.AccountStore.reseal_totp_secrets`), after which the old keys may be dropped. The key
lives outside the database (the environment, a vault), so a copy of the database or a backup alone does not give
the seeds away. Production refuses to start with the development key (:mod:`kb.identity.hardening`).

Rows written before sealing existed hold the bare base32 seed; :meth:`DataKey.open` still reads them and
:meth:`DataKey.reseal` seals them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kb.config import DEVELOPMENT_DATA_KEY, Settings
from kb.errors import DataKeyError

#: A seed stored before sealing: RFC 4648 base32 (what ``pyotp.random_base32`` makes), 16 to 64 characters.
_BARE_SEED = re.compile(r"[A-Z2-7]{16,64}=*")


def data_keys(value: str) -> list[str]:
    """The Fernet keys of a ``KB_DATA_KEY`` value, first (sealing) key first; blanks ignored."""
    return [part.strip() for part in value.split(",") if part.strip()]


class DataKey:
    """Seal and open secrets with a list of Fernet keys (module docstring).

    Args:
        keys: Fernet keys (URL-safe base64 of 32 bytes); the first seals, all open.

    Raises:
        ValueError: no key, or one is not a Fernet key.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("KB_DATA_KEY holds no key.")
        fernets = [Fernet(key.encode("ascii")) for key in keys]
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self.is_development = keys[0] == DEVELOPMENT_DATA_KEY

    @classmethod
    def from_settings(cls, settings: Settings) -> DataKey:
        """The keys of ``settings.data_key`` (``KB_DATA_KEY``)."""
        return cls(data_keys(settings.data_key))

    def seal(self, secret: str) -> str:
        """``secret`` sealed with the first key: a Fernet token (ASCII, about 140 characters for a 32-character
        seed), different at every call (random IV)."""
        return self._all.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret in ``stored`` (a token of :meth:`seal`, or a bare base32 seed from before sealing).

        Raises:
            DataKeyError: no key of ``KB_DATA_KEY`` opens it (the key it was sealed with was dropped or changed).
        """
        if _BARE_SEED.fullmatch(stored):
            return stored
        try:
            return self._all.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise DataKeyError(
                "A stored secret cannot be opened with KB_DATA_KEY: the key it was sealed with is not in the list. "
                "Put that key back after the new one, or enrol the second factor again (kb users totp NAME)."
            ) from exc

    def needs_reseal(self, stored: str) -> bool:
        """Whether ``stored`` is bare or sealed with a key other than the first (:meth:`reseal` would change it).

        Raises:
            DataKeyError: no key opens it.
        """
        if _BARE_SEED.fullmatch(stored):
            return True
        try:
            self._primary.decrypt(stored.encode("ascii"))
        except InvalidToken:
            self.open(stored)  # raises DataKeyError when no key opens it
            return True
        return False

    def reseal(self, stored: str) -> str:
        """``stored`` sealed with the first key (a bare seed is sealed; a token of an older key re-encrypted).

        Raises:
            DataKeyError: no key opens it.
        """
        return self.seal(self.open(stored))
