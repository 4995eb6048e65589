"""Per-client rate limit of login attempts (GB/T 22239-2019 7.1.4.1 b 限制非法登录次数), on ``limits`` — the engine
slowapi is built on — used directly so that each app has its own limiter built from its settings instead of a
module-level decorator."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from kb.errors import RateLimitedError


class LoginRateLimiter:
    """A moving-window limit per key (the client IP), in memory (one server process).

    Args:
        rate: a ``limits`` rate string such as ``"20/minute"`` (the default of ``KB_LOGIN_RATE_LIMIT``).

    Raises:
        ValueError: ``rate`` cannot be parsed.
    """

    def __init__(self, rate: str) -> None:
        self.rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count one attempt for ``key``.

        Raises:
            RateLimitedError: more than the rate within its window (429, with the seconds until the window's
                oldest attempt expires as ``retry_after``).
        """
        if not self._limiter.hit(self.rate, "login", key):
            reset_at = self._limiter.get_window_stats(self.rate, "login", key).reset_time  # epoch seconds
            wait = max(1, math.ceil(reset_at - time.time()))
            raise RateLimitedError(
                f"Too many login attempts from {key}; at most {self.rate} are allowed. Try again in {wait} s.", wait
            )
