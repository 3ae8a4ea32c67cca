"""The one signature scheme of AgentOS, for inbound webhooks and outbound callbacks.

Header (Stripe-style)::

    X-AgentOS-Signature: t=<unix timestamp>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

The timestamp is part of the signed text, so a captured request cannot be replayed with a
fresh timestamp, and a receiver refuses timestamps further than the tolerance (5 minutes)
from its clock. Several ``v1=`` entries may be sent (e.g. while a secret is rotated); one
match is enough. Comparisons are constant-time.

The header is parsed strictly (:func:`parse_header`), so there is one way to write it:
comma-separated ``key=value`` items, no spaces; exactly one ``t`` (decimal, no leading
zero); one to MAX_SIGNATURES ``v1`` values, each 64 lowercase hex digits; any other key is
refused. The order of the items is free. A re-worded header is therefore either refused or
carries the same signed timestamp, and the receiver identifies a delivery by that
timestamp and the body (triggers.models.WebhookDelivery), never by the header's text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-AgentOS-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_SIGNATURES = 5
MAX_HEADER_LENGTH = 1024
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


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
    if len(header) > MAX_HEADER_LENGTH or not header.isascii():
        raise SignatureError(f"the {SIGNATURE_HEADER} header is not a signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, separator, value = item.partition("=")
        if not separator:
            raise SignatureError(f"'{item[:20]}' in the {SIGNATURE_HEADER} header is not key=value")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
        else:
            raise SignatureError(f"unknown key '{key[:20]}' in the {SIGNATURE_HEADER} header (only t and v1)")
    if len(timestamps) != 1:
        raise SignatureError(f"the {SIGNATURE_HEADER} header must have exactly one t=<unix time>")
    (timestamp,) = timestamps
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("the signature timestamp is not a unix time")
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise SignatureError(f"the {SIGNATURE_HEADER} header must have 1 to {MAX_SIGNATURES} v1=<hex hmac> values")
    for signature in signatures:
        if not _SIGNATURE.fullmatch(signature):
            raise SignatureError("a v1 signature must be 64 lowercase hexadecimal digits")
    return int(timestamp), signatures


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
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("the signature does not match the body")
    return timestamp
