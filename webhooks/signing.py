"""The signature on every webhook request, Stripe's scheme with this project's header name.

    Orderflow-Signature: t=1764410400,v1=5257a869e7...

`v1` is the hex HMAC-SHA256, keyed with the endpoint's secret, of the timestamp, a dot and
the raw body. While a rotated-out secret is in its grace period there are two `v1` values, one
per secret: a receiver accepts the request when any of them matches its secret. Receivers
should also refuse a timestamp too far from their clock (5 minutes), so a request cannot be
replayed later. README.md has a verification snippet; the tests run it.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Orderflow-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(*, secrets_: list[str], timestamp: int, body: bytes) -> str:
    """The header's value, with one v1 per secret (the current one first)."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(secret=s, timestamp=timestamp, body=body)}" for s in secrets_]
    return ",".join(parts)
