"""The second factor: TOTP (RFC 6238) secrets, codes and the provisioning QR code as SVG.

The QR code is drawn here (segno, pure Python): the secret never goes to a QR service. A
code is matched to its time-step, so that a step once used can be refused after
(shared/accounts/factor.py keeps each person's last).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import time

import pyotp
import segno

ISSUER = "REE Channel"
# One step either side: a phone clock 30 s off still signs in.
VALID_WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def is_secret(text: str) -> bool:
    """Whether `text` is a base32 secret of 16 to 64 characters (what a form sends back)."""
    if not 16 <= len(text) <= 64:
        return False
    try:
        base64.b32decode(text + "=" * (-len(text) % 8), casefold=False)
    except (binascii.Error, ValueError):
        return False
    return True


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(secret: str, email: str) -> str:
    """The provisioning URI as an SVG QR code, for the page that sets up the factor."""
    out = io.BytesIO()
    segno.make(provisioning_uri(secret, email), error="m").save(
        out, kind="svg", scale=4, xmldecl=False
    )
    return out.getvalue().decode()


def matched_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time-step (30 s since the epoch) whose code this is, within VALID_WINDOW steps of
    now, or None. The latest step first: of two steps with the same code, the later counts."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    otp = pyotp.TOTP(secret)
    step = otp.timecode(time.time() if now is None else now)
    for candidate in range(step + VALID_WINDOW, step - VALID_WINDOW - 1, -1):
        if hmac.compare_digest(otp.generate_otp(candidate), code):
            return candidate
    return None


def code_matches(secret: str, code: str) -> bool:
    return matched_step(secret, code) is not None


def current_code(secret: str) -> str:
    """The code an authenticator app shows now (tests and the demo)."""
    return pyotp.TOTP(secret).now()
