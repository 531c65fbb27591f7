"""The second factor: TOTP (RFC 6238) secrets, codes and the provisioning QR code as SVG.

The QR code is drawn here (segno, pure Python): the secret never goes to a QR service.
"""

from __future__ import annotations

import io

import pyotp
import segno

ISSUER = "REE Channel"
# One step either side: a phone clock 30 s off still signs in.
VALID_WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(secret: str, email: str) -> str:
    """The provisioning URI as an SVG QR code, for the page that sets up the factor."""
    out = io.BytesIO()
    segno.make(provisioning_uri(secret, email), error="m").save(
        out, kind="svg", scale=4, xmldecl=False
    )
    return out.getvalue().decode()


def code_matches(secret: str, code: str) -> bool:
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=VALID_WINDOW)


def current_code(secret: str) -> str:
    """The code an authenticator app shows now (tests and the demo)."""
    return pyotp.TOTP(secret).now()
