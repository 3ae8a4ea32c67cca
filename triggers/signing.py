"""The one signature scheme of AgentOS, for inbound webhooks and outbound callbacks.

Header (Stripe-style)::

    X-AgentOS-Signature: t=<unix timestamp>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

The timestamp is part of the signed text, so a captured request cannot be replayed with a
fresh timestamp, and a receiver refuses timestamps further than the tolerance (5 minutes)
from its clock. Several ``v1=`` entries may be sent (e.g. while a secret is rotated); one
match is enough. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-AgentOS-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The signature header is missing, malformed, stale or does not match; message says which."""


def compute_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body``: ``t=<timestamp>,v1=<hex>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={compute_signature(secret=secret, timestamp=timestamp, body=body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, [v1 signatures]) of a header value; raises SignatureError when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            if not value.isdigit() or len(value) > 12:
                raise SignatureError("the signature timestamp is not a unix time")
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError(f"the {SIGNATURE_HEADER} header must look like t=<unix time>,v1=<hex hmac>")
    return timestamp, signatures


def verify(*, secret: str, body: bytes, header: str | None, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
           now: float | None = None) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp or raises SignatureError."""
    if not header:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
    timestamp, signatures = parse_header(header)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"the signature timestamp is more than {tolerance} seconds from the server's clock")
    expected = compute_signature(secret=secret, timestamp=timestamp, body=body)
    # Compare against every candidate (no early exit on the first mismatch) in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("the signature does not match the body")
    return timestamp
