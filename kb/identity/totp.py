"""TOTP second factor (RFC 6238 through ``pyotp``): verification that refuses a replayed code, and QR codes of
enrolment URIs (``segno``).

A code is accepted for the current 30-second step or one step either side (clock drift, RFC 6238 section 5.2),
and only when its step is later than the last step accepted for the user, so the same code (or an older one)
cannot be used twice (RFC 6238 section 5.2: "the verifier MUST NOT accept the second attempt of the OTP after
the successful validation has been issued for the first OTP").
"""

from __future__ import annotations

import hmac
import io
from datetime import datetime

import pyotp
import segno

#: Steps either side of now that are accepted.
DRIFT_STEPS = 1


def accepted_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    """The time step ``code`` belongs to when it is valid for ``secret`` at ``now`` and not a replay (its step is
    after ``last_step``), else None. Compared in constant time."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    code = code.strip()
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def qr_svg(uri: str) -> str:
    """An SVG QR code (error correction M, scale 4) of an ``otpauth://`` enrolment URI, as text."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode("utf-8")
